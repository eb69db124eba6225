// An echo server on Node's `ws`, for tests/test_client_interop.py.
// Prints its port, then serves on 127.0.0.1 until its stdin closes:
//   /echo    echoes every message (permessage-deflate accepted)
//   /close   closes at once with 4003 "bye"
//   /refuse  refuses the handshake with 403 and an X-Refused header
const http = require("http");
const { WebSocketServer } = require("ws");

const server = http.createServer();
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: { threshold: 0 },
});
server.on("upgrade", (request, socket, head) => {
  if (request.url === "/refuse") {
    socket.end(
      "HTTP/1.1 403 Forbidden\r\nX-Refused: yes\r\nContent-Length: 4\r\n" +
        "Connection: close\r\n\r\nnope",
    );
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    if (request.url === "/close") {
      ws.close(4003, "bye");
      return;
    }
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
