using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace IdentityInit.Web.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class RunNotes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<bool>(
                name: "Archived",
                table: "runs",
                type: "INTEGER",
                nullable: false,
                defaultValue: false);

            migrationBuilder.AddColumn<string>(
                name: "Notes",
                table: "runs",
                type: "TEXT",
                nullable: false,
                defaultValue: "");

            migrationBuilder.CreateIndex(
                name: "IX_runs_Archived_CreatedAt",
                table: "runs",
                columns: new[] { "Archived", "CreatedAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_runs_Archived_CreatedAt",
                table: "runs");

            migrationBuilder.DropColumn(
                name: "Archived",
                table: "runs");

            migrationBuilder.DropColumn(
                name: "Notes",
                table: "runs");
        }
    }
}
