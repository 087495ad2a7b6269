// node:http without its ES module namespace. Importing a built-in as an ES module builds the namespace from
// every export, and on Node ≥ 22 node:http's exports include getters (WebSocket, CloseEvent, MessageEvent)
// that load Node's bundled undici — with tls, http2, zlib and web streams: +14 MB RSS on Node 24.22 for a
// sidecar that uses none of it (docs/kubernetes.md, "Memory budget"). process.getBuiltinModule returns the
// CommonJS exports object, whose getters run only when read. Types stay `import type` from 'node:http'.
export const nodeHttp = process.getBuiltinModule('node:http');
