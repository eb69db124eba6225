// Benchmark server: Node's `ws` (installed by benchmarks/run into
// benchmarks/.cache/node).  See _common.py for what it serves:
//   node ws_server.js PORT [--host HOST] [--deflate] [--tls-cert CERT --tls-key KEY]
// `ws` has no broadcast API: both broadcast modes are a loop of send().
// With --deflate it negotiates permessage-deflate with ws' defaults, except
// threshold 0 (ws leaves messages under 1 KiB uncompressed by default).
// With --tls-cert it serves wss:// from Node's https server.
"use strict";
const { WebSocketServer } = require("ws");

const MAX_SIZE = 16 * 1024 * 1024;
const argv = process.argv.slice(2);
const port = parseInt(argv[0] || "0", 10);
const host = argv.includes("--host") ? argv[argv.indexOf("--host") + 1] : "127.0.0.1";
const deflate = argv.includes("--deflate");
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : null);
const tlsCert = option("--tls-cert");

const settings = {
  maxPayload: MAX_SIZE, clientTracking: false,
  perMessageDeflate: deflate ? { threshold: 0 } : false,
};
let wss;
let listening;
if (tlsCert) {
  const fs = require("fs");
  const https = require("https");
  const server = https.createServer({
    cert: fs.readFileSync(tlsCert), key: fs.readFileSync(option("--tls-key")),
  });
  wss = new WebSocketServer({ server, ...settings });
  server.listen({ host, port, backlog: 1024 });
  listening = [server, () => server.address().port];
} else {
  wss = new WebSocketServer({ host, port, backlog: 1024, ...settings });
  listening = [wss, () => wss.address().port];
}
const subscribers = new Set();

function parseCommand(text) {
  const words = text.split(/\s+/);
  const count = parseInt(words[1], 10);
  const perTurn = words.length > 3 ? Math.max(1, parseInt(words[3], 10)) : count;
  return { count, text: "b".repeat(parseInt(words[2], 10)), perTurn };
}

wss.on("connection", (ws, request) => {
  if (request.url !== "/bcast") {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  subscribers.add(ws);
  ws.on("close", () => subscribers.delete(ws));
  ws.on("message", (data) => {
    const { count, text, perTurn } = parseCommand(data.toString());
    const turn = (left) => {
      for (let i = 0; i < Math.min(left, perTurn); i++) {
        for (const each of subscribers) each.send(text);
      }
      if (left > perTurn) setImmediate(turn, left - perTurn);
    };
    if (count > 0) turn(count);
  });
});
listening[0].on("listening", () => {
  process.stdout.write(`LISTENING ${listening[1]()}\n`);
});
