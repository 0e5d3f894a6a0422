using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace IdentityInit.Web.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Workers : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "CheckpointStep",
                table: "runs",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Worker",
                table: "runs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "WorkerSince",
                table: "runs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "live_batches",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    RunId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Payload = table.Column<string>(type: "TEXT", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_live_batches", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_live_batches_CreatedAt",
                table: "live_batches",
                column: "CreatedAt");

            migrationBuilder.CreateIndex(
                name: "IX_live_batches_RunId_Id",
                table: "live_batches",
                columns: new[] { "RunId", "Id" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "live_batches");

            migrationBuilder.DropColumn(
                name: "CheckpointStep",
                table: "runs");

            migrationBuilder.DropColumn(
                name: "Worker",
                table: "runs");

            migrationBuilder.DropColumn(
                name: "WorkerSince",
                table: "runs");
        }
    }
}
