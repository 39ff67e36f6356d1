// The official credential-free interop cases with grpc-js (@grpc/grpc-js) as the client: a
// fourth, independent gRPC stack (Node's http2), for checking a server written here against it.
// Not run by default: it needs Node and two npm packages, which the project does not install.
//
//   npm install --prefix /tmp/grpcjs @grpc/grpc-js @grpc/proto-loader
//   INTEROP_GRPCJS_MODULES=/tmp/grpcjs/node_modules pytest tests/interop/test_cli.py
//   (or by hand: NODE_PATH=/tmp/grpcjs/node_modules node grpcjs_client.js PORT PROTO_DIR)
//
// Prints "ok   <case>" or "FAIL <case> ..." per case; exits 1 if any failed.
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const assert = require('assert');
const [, , port, protoDir] = process.argv;
const def = loader.loadSync('interop_test.proto', { includeDirs: [protoDir], keepCase: true, defaults: true, longs: Number });
const pkg = grpc.loadPackageDefinition(def).grpc.testing;
const target = `127.0.0.1:${port}`;
const mk = (opts = {}) => new pkg.TestService(target, grpc.credentials.createInsecure(), opts);
const zeros = (n) => Buffer.alloc(n);
const unary = (c, m, req, md = new grpc.Metadata(), opts = {}) => new Promise((res, rej) => {
  const call = c[m](req, md, opts, (err, resp) => err ? rej(err) : res({ resp, call }));
});
const expectCode = async (p, code, msg) => {
  try { await p; } catch (e) { assert.strictEqual(e.code, code, `code ${e.code} ${e.details}`); if (msg !== undefined) assert.strictEqual(e.details, msg); return e; }
  throw new Error('call succeeded');
};
const readAll = (call) => new Promise((res, rej) => { const out = []; call.on('data', d => out.push(d)); call.on('error', rej); call.on('end', () => res(out)); });
const cases = {
  async empty_unary(c) { const { resp } = await unary(c, 'EmptyCall', {}); assert(resp); },
  async large_unary(c) { const { resp } = await unary(c, 'UnaryCall', { response_size: 314159, payload: { body: zeros(271828) } }); assert.strictEqual(resp.payload.body.length, 314159); },
  async client_compressed_unary() {
    const plain = mk(); const gz = mk({ 'grpc.default_compression_algorithm': 2 });
    await expectCode(unary(plain, 'UnaryCall', { expect_compressed: { value: true }, response_size: 314159, payload: { body: zeros(271828) } }), grpc.status.INVALID_ARGUMENT);
    const { resp } = await unary(gz, 'UnaryCall', { expect_compressed: { value: true }, response_size: 314159, payload: { body: zeros(271828) } });
    assert.strictEqual(resp.payload.body.length, 314159);
    const r2 = await unary(plain, 'UnaryCall', { expect_compressed: { value: false }, response_size: 314159, payload: { body: zeros(271828) } });
    assert.strictEqual(r2.resp.payload.body.length, 314159);
  },
  async server_compressed_unary(c) { for (const v of [true, false]) { const { resp } = await unary(c, 'UnaryCall', { response_compressed: { value: v }, response_size: 314159, payload: { body: zeros(271828) } }); assert.strictEqual(resp.payload.body.length, 314159); } },
  async client_streaming(c) { const r = await new Promise((res, rej) => { const call = c.StreamingInputCall((e, r) => e ? rej(e) : res(r)); for (const n of [27182, 8, 1828, 45904]) call.write({ payload: { body: zeros(n) } }); call.end(); }); assert.strictEqual(r.aggregated_payload_size, 74922); },
  async client_compressed_streaming() {
    const plain = mk(); const gz = mk({ 'grpc.default_compression_algorithm': 2 });
    await expectCode(new Promise((res, rej) => { const call = plain.StreamingInputCall((e, r) => e ? rej(e) : res(r)); call.write({ expect_compressed: { value: true }, payload: { body: zeros(27182) } }); call.end(); }), grpc.status.INVALID_ARGUMENT);
    const r = await new Promise((res, rej) => { const call = gz.StreamingInputCall((e, r) => e ? rej(e) : res(r)); call.write({ expect_compressed: { value: true }, payload: { body: zeros(27182) } }); call.write({ expect_compressed: { value: false }, payload: { body: zeros(45904) } }); call.end(); });
    assert.strictEqual(r.aggregated_payload_size, 73086);
  },
  async server_streaming(c) { const out = await readAll(c.StreamingOutputCall({ response_parameters: [31415, 9, 2653, 58979].map(size => ({ size })) })); assert.deepStrictEqual(out.map(r => r.payload.body.length), [31415, 9, 2653, 58979]); },
  async server_compressed_streaming(c) { const out = await readAll(c.StreamingOutputCall({ response_parameters: [{ size: 31415, compressed: { value: true } }, { size: 92653, compressed: { value: false } }] })); assert.deepStrictEqual(out.map(r => r.payload.body.length), [31415, 92653]); },
  async ping_pong(c) {
    const call = c.FullDuplexCall(); const sizes = [[27182, 31415], [8, 9], [1828, 2653], [45904, 58979]];
    const it = call[Symbol.asyncIterator]();
    for (const [rq, rs] of sizes) { call.write({ response_parameters: [{ size: rs }], payload: { body: zeros(rq) } }); const { value, done } = await it.next(); assert(!done); assert.strictEqual(value.payload.body.length, rs); }
    call.end(); const last = await it.next(); assert(last.done);
  },
  async empty_stream(c) { const call = c.FullDuplexCall(); const p = readAll(call); call.end(); assert.deepStrictEqual(await p, []); },
  async cancel_after_begin(c) { const p = new Promise((res) => { const call = c.StreamingInputCall((e) => res(e)); setTimeout(() => call.cancel(), 20); }); const e = await p; assert.strictEqual(e.code, grpc.status.CANCELLED); },
  async cancel_after_first_response(c) { const call = c.FullDuplexCall(); const err = new Promise(res => call.on('error', res)); call.write({ response_parameters: [{ size: 31415 }], payload: { body: zeros(27182) } }); await new Promise(res => call.once('data', res)); call.cancel(); assert.strictEqual((await err).code, grpc.status.CANCELLED); },
  async timeout_on_sleeping_server(c) { const call = c.FullDuplexCall(new grpc.Metadata(), { deadline: Date.now() + 1 }); const err = new Promise(res => call.on('error', res)); call.on('data', () => {}); call.write({ payload: { body: zeros(27182) } }); assert.strictEqual((await err).code, grpc.status.DEADLINE_EXCEEDED); },
  async custom_metadata(c) {
    const md = () => { const m = new grpc.Metadata(); m.set('x-grpc-test-echo-initial', 'test_initial_metadata_value'); m.set('x-grpc-test-echo-trailing-bin', Buffer.from([0xab, 0xab, 0xab])); return m; };
    const check = (init, trail) => { assert.deepStrictEqual(init.get('x-grpc-test-echo-initial'), ['test_initial_metadata_value']); assert.deepStrictEqual(trail.get('x-grpc-test-echo-trailing-bin'), [Buffer.from([0xab, 0xab, 0xab])]); };
    await new Promise((res, rej) => { let init; const call = c.UnaryCall({ response_size: 314159, payload: { body: zeros(271828) } }, md(), (e) => { if (e) rej(e); }); call.on('metadata', m => init = m); call.on('status', s => { try { check(init, s.metadata); res(); } catch (x) { rej(x); } }); });
    await new Promise((res, rej) => { let init; const call = c.FullDuplexCall(md()); call.on('metadata', m => init = m); call.on('data', () => {}); call.on('error', rej); call.on('status', s => { try { check(init, s.metadata); res(); } catch (x) { rej(x); } }); call.write({ response_parameters: [{ size: 314159 }], payload: { body: zeros(271828) } }); call.end(); });
  },
  async status_code_and_message(c) {
    await expectCode(unary(c, 'UnaryCall', { response_status: { code: 2, message: 'test status message' } }), 2, 'test status message');
    const call = c.FullDuplexCall(); const err = new Promise(res => call.on('error', res)); call.on('data', () => {}); call.write({ response_status: { code: 2, message: 'test status message' } }); call.end();
    const e = await err; assert.strictEqual(e.code, 2); assert.strictEqual(e.details, 'test status message');
  },
  async special_status_message(c) { const m = '\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n'; await expectCode(unary(c, 'UnaryCall', { response_status: { code: 2, message: m } }), 2, m); },
  async unimplemented_method(c) { await expectCode(unary(c, 'UnimplementedCall', {}), grpc.status.UNIMPLEMENTED); },
  async unimplemented_service() { const u = new pkg.UnimplementedService(target, grpc.credentials.createInsecure()); await expectCode(new Promise((res, rej) => u.UnimplementedCall({}, (e, r) => e ? rej(e) : res(r))), grpc.status.UNIMPLEMENTED); },
};
(async () => {
  const shared = mk(); let failed = 0;
  for (const [name, fn] of Object.entries(cases)) {
    try { await fn(shared); console.log('ok  ', name); } catch (e) { failed++; console.log('FAIL', name, e && (e.stack || e).toString().split('\n').slice(0, 3).join(' | ')); }
  }
  // the shared channel still works
  try { await unary(shared, 'EmptyCall', {}); console.log('ok   shared channel still serves'); } catch (e) { failed++; console.log('FAIL shared channel', e.message); }
  process.exit(failed ? 1 : 0);
})();
