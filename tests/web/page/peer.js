// An independent gRPC-Web peer for tests/web/test_peer.py, from npm's @connectrpc/connect-node:
//   node peer.mjs server          -> serves echo.proto's Echo as gRPC-Web (HTTP/1.1 and h2c),
//                                    prints {"http1": port, "http2": port}
//   node peer.mjs client URL VER  -> calls URL as a gRPC-Web client over HTTP/VER ("1.1" or
//                                    "2"), prints the results as JSON
import * as http from "node:http";
import * as http2 from "node:http2";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Echo, EchoResponseSchema } from "./gen/echo_pb.js";

const FAIL = "bad input: ünïcode ✓";
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)));
  });

function failure() {
  return new ConnectError(FAIL, Code.InvalidArgument, { "x-fail": "yes" }, [
    { desc: EchoResponseSchema, value: { message: "the detail", index: 7 } },
  ]);
}

const routes = (router) =>
  router.service(Echo, {
    async unary(req, ctx) {
      if (req.delayMs) await sleep(req.delayMs, ctx.signal);
      if (req.message === "fail") throw failure();
      if (req.message === "meta") {
        const value = ctx.requestHeader.get("x-req") ?? "";
        ctx.responseHeader.set("x-echo", value);
        ctx.responseTrailer.set("x-trail", "t-" + value);
        return { message: "meta:" + value };
      }
      if (req.message === "deadline") return { index: Math.round(ctx.timeoutMs() ?? -1) };
      return { message: req.message, payload: req.payload };
    },
    async *serverStream(req, ctx) {
      for (let index = 0; index < req.count; index++) {
        if (req.delayMs) await sleep(req.delayMs, ctx.signal);
        if (req.message === "fail" && index === 2) throw failure();
        yield { message: `${req.message}-${index}`, index };
      }
    },
    async clientStream(requests) {
      const parts = [];
      for await (const r of requests) parts.push(r.message);
      return { message: parts.join("+"), index: parts.length };
    },
    async *bidiStream(requests) {
      let index = 0;
      for await (const r of requests) yield { message: r.message, index: index++ };
    },
  });

function describe(err) {
  const e = ConnectError.from(err);
  return {
    codeName: Code[e.code],
    rawMessage: e.rawMessage,
    details: e.findDetails(EchoResponseSchema).map((d) => ({ message: d.message, index: d.index })),
    metadata: Object.fromEntries(e.metadata.entries()),
  };
}

async function client(baseUrl, httpVersion) {
  const echo = createClient(Echo, createGrpcWebTransport({ baseUrl, httpVersion }));
  const out = {};
  out.unary = (await echo.unary({ message: "hi from node" })).message;
  out.stream = [];
  for await (const r of echo.serverStream({ message: "s", count: 3 })) out.stream.push([r.message, r.index]);
  try {
    await echo.unary({ message: "fail" });
  } catch (err) {
    out.error = describe(err);
  }
  out.streamError = { received: [] };
  try {
    for await (const r of echo.serverStream({ message: "fail", count: 5 })) out.streamError.received.push(r.index);
  } catch (err) {
    out.streamError.error = describe(err);
  }
  const headers = {};
  const trailers = {};
  const reply = await echo.unary(
    { message: "meta" },
    {
      headers: { "x-req": "from-node" },
      onHeader: (h) => h.forEach((v, k) => (headers[k] = v)),
      onTrailer: (t) => t.forEach((v, k) => (trailers[k] = v)),
    },
  );
  out.metadata = { reply: reply.message, headers, trailers };
  out.remainingMs = (await echo.unary({ message: "deadline" }, { timeoutMs: 5000 })).index;
  try {
    await echo.unary({ message: "slow", delayMs: 3000 }, { timeoutMs: 300 });
  } catch (err) {
    out.deadline = describe(err);
  }
  async function* words() {
    yield { message: "a" };
    yield { message: "b" };
  }
  out.clientStream = (await echo.clientStream(words())).message;
  return out;
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "server") {
  const handler = connectNodeAdapter({ routes, grpcWeb: true, grpc: false, connect: false });
  const h1 = http.createServer(handler).listen(0, "127.0.0.1");
  const h2 = http2.createServer(handler).listen(0, "127.0.0.1");
  await Promise.all([h1, h2].map((s) => new Promise((r) => s.once("listening", r))));
  console.log(JSON.stringify({ http1: h1.address().port, http2: h2.address().port }));
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0)); // the test closes stdin to stop the peer
} else {
  console.log(JSON.stringify(await client(args[0], args[1])));
  process.exit(0);
}
