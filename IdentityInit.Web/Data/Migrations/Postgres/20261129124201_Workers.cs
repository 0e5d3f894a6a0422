using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace IdentityInit.Web.Data.Migrations.Postgres
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
                type: "bigint",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Worker",
                table: "runs",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "WorkerSince",
                table: "runs",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "live_batches",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    RunId = table.Column<Guid>(type: "uuid", nullable: false),
                    Payload = table.Column<string>(type: "text", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
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
