using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace IdentityInit.Web.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Studies : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "StudyId",
                table: "share_links",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Arm",
                table: "runs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "StudyId",
                table: "runs",
                type: "TEXT",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "studies",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "TEXT", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Preset = table.Column<string>(type: "TEXT", nullable: true),
                    Scale = table.Column<string>(type: "TEXT", nullable: false),
                    Owner = table.Column<string>(type: "TEXT", nullable: false),
                    DefinitionJson = table.Column<string>(type: "TEXT", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    EndedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    Cancelled = table.Column<bool>(type: "INTEGER", nullable: false),
                    FrozenJson = table.Column<string>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_studies", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_runs_StudyId",
                table: "runs",
                column: "StudyId");

            migrationBuilder.CreateIndex(
                name: "IX_studies_CreatedAt",
                table: "studies",
                column: "CreatedAt");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "studies");

            migrationBuilder.DropIndex(
                name: "IX_runs_StudyId",
                table: "runs");

            migrationBuilder.DropColumn(
                name: "StudyId",
                table: "share_links");

            migrationBuilder.DropColumn(
                name: "Arm",
                table: "runs");

            migrationBuilder.DropColumn(
                name: "StudyId",
                table: "runs");
        }
    }
}
