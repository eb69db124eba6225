Write-side flow control (bufferedAmount, drained(), a slow-client policy for broadcasts), keepalive pings, an idle timeout and graceful shutdown with 1001 for every client.
