using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace IdentityInit.Web.Data.Migrations.Postgres
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
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Arm",
                table: "runs",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "StudyId",
                table: "runs",
                type: "uuid",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "studies",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    Name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    Preset = table.Column<string>(type: "text", nullable: true),
                    Scale = table.Column<string>(type: "text", nullable: false),
                    Owner = table.Column<string>(type: "text", nullable: false),
                    DefinitionJson = table.Column<string>(type: "text", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    EndedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: true),
                    Cancelled = table.Column<bool>(type: "boolean", nullable: false),
                    FrozenJson = table.Column<string>(type: "text", nullable: true)
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
