// A one-shot HTTP(S) GET run as a child process by the daemon (system/lookups.ts),
// so it can run with an uplink's group and leave by that uplink:
//
//   node http-get.js URL TIMEOUT_MS MAX_BYTES
//
// Prints the body and exits 0 on a 2xx answer; prints the reason on stderr and
// exits 1 otherwise. A body longer than MAX_BYTES is a failure, not truncated.

import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';

function fail(reason: string): never {
  process.stderr.write(`${reason}\n`);
  process.exit(1);
}

const [url, timeoutText, maxText] = process.argv.slice(2);
const timeoutMs = Number(timeoutText);
const maxBytes = Number(maxText);
if (!url || !Number.isInteger(timeoutMs) || !Number.isInteger(maxBytes)) fail('usage: http-get URL TIMEOUT_MS MAX_BYTES');

const get = url.startsWith('https:') ? httpsGet : httpGet;
const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
const request = get(url, { headers: { 'user-agent': 'dispatcher', accept: 'text/plain, application/json' } }, (response: IncomingMessage) => {
  const chunks: Buffer[] = [];
  let size = 0;
  response.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) fail(`the answer is longer than ${maxBytes} bytes`);
    chunks.push(chunk);
  });
  response.on('end', () => {
    clearTimeout(timer);
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) fail(`HTTP ${status}`);
    process.stdout.write(Buffer.concat(chunks).toString('utf8'));
    process.exit(0);
  });
  response.on('error', (error) => fail(error.message));
});
request.on('error', (error) => fail(error.message));
