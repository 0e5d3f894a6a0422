using Npgsql;

namespace IdentityInit.Web.Data;

/// <summary>
/// A PostgreSQL LISTEN for the life of a background service: one dedicated, named connection (an operator finds it in
/// pg_stat_activity by <c>application_name</c>), reopened a second after it is lost. What was missed while it was down is
/// the caller's to catch up on in <c>whileListening</c>, which runs once the LISTEN is in place.
/// </summary>
public static class PgListener
{
    public static async Task ListenAsync(AppDb db, string name, string channel, Action<string> onNotification,
        Func<NpgsqlConnection, CancellationToken, Task> whileListening, ILogger logger, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var listening = new NpgsqlConnectionStringBuilder(db.Postgres) { ApplicationName = name, Pooling = false };
                await using var connection = new NpgsqlConnection(listening.ConnectionString);
                await connection.OpenAsync(stoppingToken);
                connection.Notification += (_, e) => onNotification(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {channel}", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                await whileListening(connection, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "{Listener} lost its PostgreSQL connection; reconnecting", name);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>Waits for notifications until the service stops.</summary>
    public static async Task WaitAsync(NpgsqlConnection connection, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested) await connection.WaitAsync(stoppingToken);
    }
}
