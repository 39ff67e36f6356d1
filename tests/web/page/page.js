// The browser side of tests/web/test_browser.py: real gRPC-Web clients from npm, bundled by
// esbuild. @connectrpc/connect-web speaks application/grpc-web+proto (fetch); Google's grpc-web
// speaks application/grpc-web-text (XHR). Each scenario returns plain JSON for the test to check.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { GrpcWebClientBase, MethodDescriptor } from "grpc-web";
import { Echo, EchoRequestSchema, EchoResponseSchema } from "./gen/echo_pb.js";

function connectClient(baseUrl) {
  return createClient(Echo, createGrpcWebTransport({ baseUrl }));
}

function describe(err) {
  if (err instanceof ConnectError) {
    return {
      code: err.code,
      codeName: Code[err.code],
      rawMessage: err.rawMessage,
      details: err.findDetails(EchoResponseSchema).map((d) => ({ message: d.message, index: d.index })),
      metadata: Object.fromEntries(err.metadata.entries()),
    };
  }
  return { unexpected: String(err) };
}

async function connectScenarios(baseUrl) {
  const client = connectClient(baseUrl);
  const out = {};
  out.unary = (await client.unary({ message: "hi from the browser" })).message;

  out.stream = [];
  for await (const r of client.serverStream({ message: "s", count: 3, delayMs: 20 })) {
    out.stream.push([r.message, r.index]);
  }

  try {
    await client.unary({ message: "fail" });
    out.error = "no error";
  } catch (err) {
    out.error = describe(err);
  }

  out.streamError = { received: [] };
  try {
    for await (const r of client.serverStream({ message: "fail", count: 5 })) {
      out.streamError.received.push(r.index);
    }
  } catch (err) {
    out.streamError.error = describe(err);
  }

  const headers = {};
  const trailers = {};
  const reply = await client.unary(
    { message: "meta" },
    {
      headers: { "x-req": "from-browser" },
      onHeader: (h) => h.forEach((v, k) => (headers[k] = v)),
      onTrailer: (t) => t.forEach((v, k) => (trailers[k] = v)),
    },
  );
  out.metadata = { reply: reply.message, headers, trailers };

  // The server sees the deadline the browser set (grpc-timeout) ...
  out.remainingMs = (await client.unary({ message: "deadline" }, { timeoutMs: 5000 })).index;
  // ... and a call that outlives it ends DEADLINE_EXCEEDED.
  try {
    await client.unary({ message: "slow", delayMs: 3000 }, { timeoutMs: 300 });
    out.deadline = "no error";
  } catch (err) {
    out.deadline = describe(err);
  }
  return out;
}

// Google's grpc-web runtime, text mode, without generated stubs: method descriptors by hand.
function descriptor(name, kind) {
  return new MethodDescriptor(
    `/asgi_grpc.test.Echo/${name}`,
    kind,
    Object,
    Object,
    (req) => toBinary(EchoRequestSchema, create(EchoRequestSchema, req)),
    (bytes) => fromBinary(EchoResponseSchema, bytes),
  );
}

async function textScenarios(baseUrl) {
  const client = new GrpcWebClientBase({ format: "text" });
  const out = {};
  const unary = descriptor("Unary", "unary");
  out.unary = (
    await client.thenableCall(`${baseUrl}/asgi_grpc.test.Echo/Unary`, { message: "text hi" }, {}, unary)
  ).message;

  out.stream = await new Promise((resolve) => {
    const got = [];
    const stream = client.serverStreaming(
      `${baseUrl}/asgi_grpc.test.Echo/ServerStream`,
      { message: "t", count: 3 },
      {},
      descriptor("ServerStream", "server_streaming"),
    );
    stream.on("data", (r) => got.push(r.message));
    stream.on("error", (e) => resolve({ got, error: [e.code, e.message] }));
    stream.on("end", () => resolve({ got }));
  });

  try {
    await client.thenableCall(`${baseUrl}/asgi_grpc.test.Echo/Unary`, { message: "fail" }, {}, unary);
    out.error = "no error";
  } catch (err) {
    out.error = { code: err.code, message: err.message, xFail: err.metadata["x-fail"] };
  }

  out.metadata = await new Promise((resolve) => {
    const seen = {};
    const call = client.rpcCall(
      `${baseUrl}/asgi_grpc.test.Echo/Unary`,
      { message: "meta" },
      { "x-req": "text-browser" },
      unary,
      (err, reply) => {
        seen.reply = err ? String(err) : reply.message;
        if ("status" in seen) resolve(seen);
      },
    );
    call.on("metadata", (md) => (seen.headers = md));
    call.on("status", (status) => {
      seen.status = status.code;
      seen.trailers = status.metadata;
      if ("reply" in seen) resolve(seen);
    });
  });
  return out;
}

window.runScenarios = async (baseUrl) => ({
  connect: await connectScenarios(baseUrl),
  text: await textScenarios(baseUrl),
});
window.pageReady = true;

// One call, for the test that a page from an origin the server does not allow is refused.
window.tryUnary = async (baseUrl) => {
  try {
    return (await connectClient(baseUrl).unary({ message: "x" })).message;
  } catch (err) {
    return describe(err);
  }
};
