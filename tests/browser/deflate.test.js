// Chromium against the release gateway: permessage-deflate is negotiated, messages of every kind
// come back identical, and the frames are really compressed on the wire.
//
// The page and its socket go through `startFront` (lib/harness.js): a loopback server that
// serves the page and relays the upgrade byte for byte to the gateway, because the gateway only
// accepts same-origin pages. The last test pins down that refusal.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { artifactPath, chromiumSkip, launchChromium, startFront, startGateway } from './lib/harness.js';
import { BIG_TEXT_BYTES, BINARY_BYTES, ECHO_PAGE_HTML } from './lib/echo-page.js';

const skip = chromiumSkip();
const PAGE = '/__browser-test/deflate.html';
const EXPECTED_EXTENSIONS =
  'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const OP_TEXT = 1;
const OP_BINARY = 2;
const isData = (f) => f.opcode === OP_TEXT || f.opcode === OP_BINARY;

function assertEchoes(r) {
  assert.equal(r.error, null, `in-page run failed: ${r.error}`);
  assert.deepEqual(
    r.items.map((i) => [i.name, i.kind, i.sent, i.received, i.identical]),
    [
      ['20 KB compressible text', 'text', BIG_TEXT_BYTES, BIG_TEXT_BYTES, true],
      ['small text', 'text', 19, 19, true],
      ['8 KiB binary (ArrayBuffer)', 'binary', BINARY_BYTES, BINARY_BYTES, true],
    ],
  );
}

async function setUp(t) {
  const gw = await startGateway(t);
  const front = await startFront(t, { upstreamPort: gw.port, pages: { [PAGE]: ECHO_PAGE_HTML } });
  const chrome = await launchChromium(t);
  return { gw, front, chrome };
}

test('Chromium negotiates permessage-deflate with /ws/echo and gets text and binary back identical', { skip }, async (t) => {
  const { front, chrome } = await setUp(t);
  const page = await chrome.newPage();
  // What Chromium's network stack saw: the handshake response and the received frames.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const handshakes = [];
  const received = [];
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(e.response));
  cdp.on('Network.webSocketFrameReceived', (e) => received.push(e.response));

  await page.goto(front.httpUrl(PAGE));
  const r = await page.evaluate((url) => window.runEcho(url), front.wsUrl('/ws/echo'));
  await page.screenshot({ path: artifactPath('deflate-echo.png'), fullPage: true });
  t.diagnostic(`ws.extensions = ${JSON.stringify(r.extensions)}`);

  assert.ok(r.extensions?.includes('permessage-deflate'), `ws.extensions = ${JSON.stringify(r.extensions)}`);
  assert.equal(r.extensions, EXPECTED_EXTENSIONS);
  assertEchoes(r);

  assert.equal(handshakes.length, 1, 'one WebSocket handshake');
  assert.equal(handshakes[0].status, 101);
  const headers = Object.fromEntries(
    Object.entries(handshakes[0].headers).map(([k, v]) => [k.toLowerCase(), v]),
  );
  assert.equal(headers['sec-websocket-extensions'], EXPECTED_EXTENSIONS);
  // CDP reports payloads after inflation: the 20 KB text arrives whole.
  const data = received.filter(isData);
  assert.equal(data.length, 3);
  assert.equal(data[0].payloadData.length, BIG_TEXT_BYTES);
  assert.deepEqual(page.consoleErrors, []);
});

test('the frames are compressed on the wire: RSV1 set, the 20 KB text in under 2 KB, both ways', { skip }, async (t) => {
  const { front, chrome } = await setUp(t);
  const page = await chrome.newPage();
  await page.goto(front.httpUrl(PAGE));
  const r = await page.evaluate((url) => window.runEcho(url), front.wsUrl('/ws/echo'));
  assert.equal(r.extensions, EXPECTED_EXTENSIONS);
  assertEchoes(r);
  // The page closed the socket (1000): wait until the relay saw the connection end.
  const c = front.connections[0];
  for (let i = 0; i < 50 && !c.closed; i++) await new Promise((res) => setTimeout(res, 20));

  assert.equal(front.connections.length, 1);
  assert.match(c.requestHead, /^sec-websocket-extensions: permessage-deflate/im);
  assert.match(c.requestHead, new RegExp(`^origin: ${front.origin}$`, 'im'));
  assert.match(c.responseHead, /^HTTP\/1\.1 101 /);
  assert.match(c.responseHead, new RegExp(`^sec-websocket-extensions: ${EXPECTED_EXTENSIONS}$`, 'im'));

  const down = c.toClient.filter(isData);
  const up = c.toServer.filter(isData);
  const name = { 1: 'text', 2: 'binary', 8: 'close' };
  await page.evaluate((rows) => window.showWire(rows), [
    ...c.toServer.map((f) => ({ dir: 'browser → gateway', ...f, opcode: name[f.opcode] ?? f.opcode })),
    ...c.toClient.map((f) => ({ dir: 'gateway → browser', ...f, opcode: name[f.opcode] ?? f.opcode })),
  ]);
  await page.screenshot({ path: artifactPath('deflate-wire.png'), fullPage: true });
  t.diagnostic(`server → client data frames: ${JSON.stringify(down)}`);
  t.diagnostic(`client → server data frames: ${JSON.stringify(up)}`);
  assert.equal(down.length, 3, 'one frame per echoed message');
  const [bigDown, smallDown, binDown] = down;
  assert.ok(bigDown.rsv1, 'the 20 KB echo is compressed (RSV1)');
  assert.ok(bigDown.payloadLength < 2048, `the 20 KB echo took ${bigDown.payloadLength} B`);
  // The gateway sends messages under 256 bytes as they are (DeflateConfig::default().min_size).
  assert.ok(!smallDown.rsv1, 'the 19-byte echo goes uncompressed');
  assert.equal(smallDown.payloadLength, 19);
  assert.ok(binDown.rsv1, 'the 8 KiB binary echo is compressed (RSV1)');
  assert.ok(binDown.payloadLength < BINARY_BYTES / 4, `the 8 KiB echo took ${binDown.payloadLength} B`);
  assert.ok(down.every((f) => f.fin && !f.masked), 'server frames: final, unmasked');
  // Chromium compresses what it sends once the extension is agreed.
  assert.equal(up.length, 3);
  assert.ok(up[0].rsv1 && up[0].payloadLength < 2048, `Chromium sent the 20 KB text in ${up[0].payloadLength} B`);
  assert.ok(up.every((f) => f.masked), 'client frames are masked');
  // The close handshake went through: one close frame each way.
  assert.equal(c.toServer.filter((f) => f.opcode === 8).length, 1);
  assert.equal(c.toClient.filter((f) => f.opcode === 8).length, 1);
});

test('the gateway refuses other origins with 403 (same-origin default): about:blank and another port', { skip }, async (t) => {
  const { front, chrome } = await setUp(t);
  // A second front: a page of another origin whose socket goes to the first front.
  const other = await startFront(t, { pages: { [PAGE]: ECHO_PAGE_HTML } });

  // about:blank: Chromium sends `Origin: null`.
  const blank = await chrome.newPage();
  await blank.setContent(ECHO_PAGE_HTML);
  const r1 = await blank.evaluate((url) => window.runEcho(url, 5000), front.wsUrl('/ws/echo'));
  const page = await chrome.newPage();
  await page.goto(other.httpUrl(PAGE));
  const r2 = await page.evaluate((url) => window.runEcho(url, 5000), front.wsUrl('/ws/echo'));
  await page.screenshot({ path: artifactPath('cross-origin-refused.png'), fullPage: true });

  for (const [r, p] of [[r1, blank], [r2, page]]) {
    assert.equal(r.extensions, null, 'never opened');
    assert.equal(r.closeCode, 1006);
    assert.ok(
      p.consoleErrors.some((e) => e.includes('Unexpected response code: 403')),
      `console: ${JSON.stringify(p.consoleErrors)}`,
    );
  }
  assert.equal(front.connections.length, 2);
  const [c1, c2] = front.connections;
  assert.match(c1.requestHead, /^origin: null$/im);
  assert.match(c2.requestHead, new RegExp(`^origin: ${other.origin}$`, 'im'));
  for (const c of [c1, c2]) assert.match(c.responseHead, /^HTTP\/1\.1 403 Forbidden/);
});
