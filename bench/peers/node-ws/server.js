'use strict';
// Node.js peer for agentwire benchmarks: the same two routes and envelopes as agentwire, built the
// way a typical Node service would be (http + the `ws` package), kept in memory only.
//
//   node server.js --port 8090 [--host 127.0.0.1] [--replay 1024]
//
//   GET  /ws/agents/{agent_id}[?since=S&epoch=E]   WebSocket; first frame `connected`, then replayed
//                                                  events (or a `snapshot`), then live events
//   POST /api/agents/{agent_id}/events             {"type":"...","data":{...}} -> 202 {"seq":N}
//   GET  /api/websocket/stats                      counters as JSON
const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
  const o = { port: 8090, host: '127.0.0.1', replay: 1024 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--port') o.port = Number(v());
    else if (a === '--host') o.host = v();
    else if (a === '--replay') o.replay = Number(v());
    else if (a === '-h' || a === '--help') {
      console.log('usage: node server.js --port N [--host ADDR] [--replay EVENTS_PER_AGENT]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('bad --port');
  if (!Number.isInteger(o.replay) || o.replay < 0) throw new Error('bad --replay');
  return o;
}

const opts = parseArgs(process.argv);
const VERSION = 'node-ws-peer/1.0 (ws ' + require('ws/package.json').version + ', node ' + process.version + ')';
const EPOCH = crypto.randomBytes(8).toString('hex');
const HEARTBEAT_S = 30;
const MAX_BODY = 1 << 20;
const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const TEXT = { binary: false };

const agents = new Map(); // agent_id -> { seq, subs: Set<ws>, ring: Buffer[] (last `replay` frames) }
const stats = { connections: 0, connections_total: 0, published: 0, delivered: 0, replayed: 0 };

function agentFor(id) {
  let a = agents.get(id);
  if (!a) {
    a = { seq: 0, subs: new Set(), ring: [] };
    agents.set(id, a);
  }
  return a;
}

function nowIso() {
  return new Date().toISOString();
}

function publish(id, type, data) {
  const a = agentFor(id);
  const seq = ++a.seq;
  const frame = Buffer.from(JSON.stringify({ type, agent_id: id, seq, ts: nowIso(), data }));
  if (opts.replay > 0) {
    a.ring.push(frame);
    if (a.ring.length > opts.replay) a.ring.shift();
  }
  for (const ws of a.subs) {
    ws.send(frame, TEXT);
    stats.delivered++;
  }
  stats.published++;
  return seq;
}

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  const m = /^\/api\/agents\/([^/]+)\/events$/.exec(path);
  if (m) {
    if (req.method !== 'POST') return reply(res, 405, { error: 'method not allowed' });
    const id = m[1];
    if (!ID_RE.test(id)) return reply(res, 400, { error: 'invalid agent_id' });
    const chunks = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) return reply(res, 413, { error: 'body too large' });
      let body;
      try {
        body = JSON.parse(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      } catch (e) {
        return reply(res, 400, { error: 'invalid JSON' });
      }
      if (!body || typeof body !== 'object' || typeof body.type !== 'string' || body.type.length === 0)
        return reply(res, 400, { error: 'type must be a non-empty string' });
      const data = body.data === undefined ? {} : body.data;
      if (data === null || typeof data !== 'object' || Array.isArray(data))
        return reply(res, 400, { error: 'data must be an object' });
      reply(res, 202, { seq: publish(id, body.type, data) });
    });
    return;
  }
  if (path === '/api/websocket/stats' && req.method === 'GET') {
    return reply(res, 200, { ...stats, agents: agents.size, epoch: EPOCH, server_version: VERSION });
  }
  reply(res, 404, { error: 'not found' });
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 121000;
server.requestTimeout = 0;

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

server.on('upgrade', (req, socket, head) => {
  const [path, query = ''] = req.url.split('?', 2);
  const m = /^\/ws\/agents\/([^/]+)$/.exec(path);
  if (!m || !ID_RE.test(m[1])) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, m[1], new URLSearchParams(query)));
});

function onConnection(ws, id, q) {
  const a = agentFor(id);
  stats.connections++;
  stats.connections_total++;
  let recovered = false;
  let replay = [];
  const sinceRaw = q.get('since');
  if (sinceRaw !== null) {
    const since = Number(sinceRaw);
    const oldest = a.seq - a.ring.length; // ring holds seqs oldest+1 .. a.seq
    if (q.get('epoch') === EPOCH && Number.isInteger(since) && since >= oldest && since <= a.seq) {
      recovered = true;
      replay = a.ring.slice(a.ring.length - (a.seq - since));
    }
  }
  ws.send(
    JSON.stringify({
      type: 'connected',
      agent_id: id,
      ts: nowIso(),
      data: {
        session_id: crypto.randomUUID(),
        seq: a.seq,
        epoch: EPOCH,
        recovered,
        replayed: replay.length,
        heartbeat_interval: HEARTBEAT_S,
        server_version: VERSION,
      },
    }),
  );
  if (sinceRaw !== null && !recovered) {
    ws.send(JSON.stringify({ type: 'snapshot', agent_id: id, seq: a.seq, ts: nowIso(), data: { seq: a.seq, epoch: EPOCH } }));
  }
  for (const f of replay) ws.send(f, TEXT);
  stats.replayed += replay.length;
  a.subs.add(ws);
  ws.on('message', (msg, isBinary) => {
    if (isBinary) return;
    let m;
    try {
      m = JSON.parse(msg);
    } catch (e) {
      return;
    }
    if (m && m.type === 'ping') ws.send(JSON.stringify({ type: 'pong', agent_id: id, ts: nowIso(), data: {} }));
  });
  ws.on('close', () => {
    a.subs.delete(ws);
    stats.connections--;
  });
  ws.on('error', () => {});
}

setInterval(() => {
  for (const [id, a] of agents) {
    if (a.subs.size === 0) continue;
    const hb = Buffer.from(JSON.stringify({ type: 'heartbeat', agent_id: id, ts: nowIso(), data: {} }));
    for (const ws of a.subs) ws.send(hb, TEXT);
  }
}, HEARTBEAT_S * 1000).unref();

server.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
  const addr = server.address();
  console.log(`node-ws peer listening on ${addr.address}:${addr.port} (${VERSION}, epoch ${EPOCH})`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
