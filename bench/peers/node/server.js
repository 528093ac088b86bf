'use strict';
// Node `ws` peer for Switchboard's benchmarks.
//   any path        : echo every text/binary message unchanged
//   /ws/broadcast   : every message a client sends goes to every connected broadcast client,
//                     the sender included
// Usage: node server.js --listen 127.0.0.1:PORT   (loopback only)

const http = require('http');
const net = require('net');
const { WebSocketServer, WebSocket } = require('ws');

function parseListen(argv) {
  let listen = '127.0.0.1:9003';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen') listen = argv[++i];
    else if (argv[i].startsWith('--listen=')) listen = argv[i].slice('--listen='.length);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`bad --listen ${listen}`);
  const host = m[1];
  const loopback = host === 'localhost' || host === '::1' ||
    (net.isIPv4(host) && host.split('.')[0] === '127');
  if (!loopback) throw new Error(`refusing non-loopback --listen ${listen}`);
  return { host, port: Number(m[2]) };
}

const { host, port } = parseListen(process.argv.slice(2));

const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const echo = new WebSocketServer({ noServer: true });
const broadcast = new WebSocketServer({ noServer: true });

server.on('upgrade', (req, socket, head) => {
  const path = (req.url || '/').split('?')[0];
  const wss = path === '/ws/broadcast' ? broadcast : echo;
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

echo.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});

broadcast.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of broadcast.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
  ws.on('error', () => {});
});

server.listen(port, host, () => {
  const a = server.address();
  console.log(`peer-node listening on ${a.address}:${a.port}`);
});
