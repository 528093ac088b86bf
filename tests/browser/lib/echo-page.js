// The test page for the permessage-deflate echo tests: in the browser, `runEcho(url)` opens a
// WebSocket, sends a 20 KB compressible text, a small text and an 8 KiB binary message, and
// compares every echo with what it sent. The results are written into the page (for the
// screenshot) and returned.

export const BIG_TEXT_BYTES = 20 * 1024;
export const BINARY_BYTES = 8 * 1024;

export const ECHO_PAGE_HTML = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>Switchboard: permessage-deflate in Chromium</title>
<style>
  body { font: 14px/1.4 monospace; margin: 16px; background: #fff; color: #111; }
  h1 { font-size: 16px; margin: 0 0 8px; }
  .pass { color: #060; } .fail { color: #b00; font-weight: bold; }
  td, th { padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
</style>
</head>
<body>
<h1>Switchboard · permessage-deflate · Chromium</h1>
<div id="status">not run</div>
<table id="results"></table>
<h1 id="wire-title"></h1>
<table id="wire"></table>
<script>
const BIG_TEXT_BYTES = ${BIG_TEXT_BYTES};
const BINARY_BYTES = ${BINARY_BYTES};

function bigText() {
  // Highly compressible and JSON-like, exactly BIG_TEXT_BYTES ASCII bytes.
  let s = '[';
  for (let i = 0; s.length < BIG_TEXT_BYTES; i++) {
    s += '{"id":' + (i % 10) + ',"user":"alice","text":"hello from switchboard"},';
  }
  return s.slice(0, BIG_TEXT_BYTES - 1) + ']';
}

function binary() {
  const b = new Uint8Array(BINARY_BYTES);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b.buffer;
}

function sameBytes(a, b) {
  const x = new Uint8Array(a), y = new Uint8Array(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function show(r) {
  const ok = r.error === null && r.items.every((i) => i.identical);
  document.getElementById('status').innerHTML =
    '<span class="' + (ok ? 'pass' : 'fail') + '">' + (ok ? 'PASS' : 'FAIL') + '</span> ' +
    r.url + '<br>extensions: <b>' + (r.extensions || '(none)') + '</b>' +
    (r.error ? '<br><span class="fail">' + r.error + '</span>' : '');
  const rows = ['<tr><th>message</th><th>sent</th><th>echoed</th><th>identical</th></tr>'];
  for (const i of r.items) {
    rows.push('<tr><td>' + i.name + '</td><td>' + i.sent + ' B</td><td>' + i.received +
      ' B</td><td class="' + (i.identical ? 'pass' : 'fail') + '">' + i.identical + '</td></tr>');
  }
  document.getElementById('results').innerHTML = rows.join('');
}

// Frames seen on the wire by the test's relay: [{ dir, opcode, rsv1, payloadLength }].
window.showWire = (frames) => {
  document.getElementById('wire-title').textContent = 'On the wire (seen by the relay)';
  const rows = ['<tr><th>direction</th><th>opcode</th><th>RSV1 (compressed)</th><th>payload on the wire</th></tr>'];
  for (const f of frames) {
    rows.push('<tr><td>' + f.dir + '</td><td>' + f.opcode + '</td><td>' + f.rsv1 + '</td><td>' +
      f.payloadLength + ' B</td></tr>');
  }
  document.getElementById('wire').innerHTML = rows.join('');
};

window.runEcho = (url, timeoutMs = 10000) => new Promise((resolve) => {
  const r = { url, extensions: null, protocol: null, items: [], error: null, closeCode: null };
  const sent = [
    { name: '20 KB compressible text', data: bigText() },
    { name: 'small text', data: 'hi 👋 switchboard' },
    { name: '8 KiB binary (ArrayBuffer)', data: binary() },
  ];
  const done = (error) => {
    if (r.done) return;
    r.done = true;
    r.error = error;
    clearTimeout(timer);
    try { ws.close(1000); } catch (e) {}
    show(r);
    resolve(r);
  };
  const timer = setTimeout(() => done('timed out after ' + timeoutMs + ' ms'), timeoutMs);
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    r.extensions = ws.extensions;
    r.protocol = ws.protocol;
    for (const m of sent) ws.send(m.data);
  };
  ws.onmessage = (ev) => {
    const m = sent[r.items.length];
    if (!m) return done('unexpected extra message');
    const isText = typeof m.data === 'string';
    const identical = isText
      ? typeof ev.data === 'string' && ev.data === m.data
      : ev.data instanceof ArrayBuffer && sameBytes(ev.data, m.data);
    r.items.push({
      name: m.name,
      kind: isText ? 'text' : 'binary',
      sent: isText ? new TextEncoder().encode(m.data).length : m.data.byteLength,
      received: typeof ev.data === 'string' ? new TextEncoder().encode(ev.data).length : ev.data.byteLength,
      identical,
    });
    show(r);
    if (r.items.length === sent.length) done(null);
  };
  ws.onerror = () => { if (!r.done) r.sawError = true; };
  ws.onclose = (ev) => {
    r.closeCode = ev.code;
    if (!r.done) done('closed before all echoes arrived: code ' + ev.code + (r.sawError ? ' (after an error event)' : ''));
  };
});
</script>
</body>
</html>
`;
