// js-http-check: an attack written in JavaScript (jco componentize, StarlingMonkey).
//
// It sends one HTTP request through the host's `http` capability and fails unless the
// answer has the expected status. Built from this file and the frozen 0.2.0 contract (the
// engine keeps loading components built against older versions; the test checks it):
//
//   jco componentize attack.js --wit ../../../wit/legacy/v0.2.0 --world-name attack \
//       --disable all --out js_http_check.wasm

import { send } from 'cme:plugin/http@0.2.0';
import { log } from 'cme:plugin/log@0.2.0';

const SCHEMA = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^https?://', description: 'The URL to call.' },
    method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'DELETE'], default: 'GET' },
    body: { type: 'string', description: 'Sent as the request body (text).' },
    expect_status: { type: 'integer', minimum: 100, maximum: 599, default: 200 },
  },
};

export function describe() {
  return {
    name: 'js-http-check',
    version: '0.1.0',
    refs: ['js_http_check:JsHttpCheck'],
    description: 'Sends one HTTP request and fails unless it answers the expected status (written in JavaScript).',
    argsSchema: JSON.stringify(SCHEMA),
    exampleArgs: JSON.stringify({ url: 'http://service.internal/health', expect_status: 200 }),
    capabilities: [{ tag: 'http', val: ['*'] }],
  };
}

// A result's error is thrown: its payload is the WIT variant ({tag, val}).
function failed(message) {
  return { tag: 'failed', val: message };
}

export function run(ctx, args) {
  // The engine validated the args against SCHEMA before the plan was stored.
  const parsed = JSON.parse(args);
  const method = parsed.method ?? 'GET';
  const expected = parsed.expect_status ?? 200;
  const body = parsed.body === undefined ? undefined : new TextEncoder().encode(parsed.body);
  log('info', `${method} ${parsed.url} (run ${ctx.runId})`);
  let response;
  try {
    response = send({ method, url: parsed.url, headers: [], body, timeoutMs: 5000 });
  } catch (e) {
    // A host error arrives as a thrown value carrying the WIT variant; a refusal stays a refusal.
    const error = e.payload ?? { tag: 'upstream', val: String(e) };
    throw error.tag === 'denied' ? { tag: 'denied', val: error.val } : failed(`${method} ${parsed.url}: ${error.val}`);
  }
  const summary = `${method} ${parsed.url} -> ${response.status}`;
  if (!ctx.dryRun && response.status !== expected) {
    throw failed(`${summary}, expected ${expected}`);
  }
  const details = { status: response.status, elapsed_ms: response.elapsedMs, language: 'javascript' };
  return { summary, targets: [parsed.url], details: JSON.stringify(details) };
}
