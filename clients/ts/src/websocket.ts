// Finding a WebSocket implementation: the one the caller injects, else the global one (browsers, Deno,
// Node.js 22+), else the `ws` package loaded on first use (Node.js 18 and 20 have no global WebSocket).

/** The part of the WHATWG WebSocket API the client uses; browsers' WebSocket and `ws` both have it. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  /** The subprotocol the server selected ("bearer" when a token was sent that way). */
  readonly protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drop the connection without a close handshake. */
  terminate?: () => void;
}

/** A WebSocket class: `globalThis.WebSocket`, or `WebSocket` from the `ws` package. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => any;

export const OPEN = 1;

/** Returns the implementation to use; loads `ws` only when there is nothing else. */
export async function resolveWebSocket(injected?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (injected) return injected;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof global === "function") return global;
  // A computed specifier: bundlers for the browser must not try to pack `ws`.
  const specifier = "ws";
  try {
    const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as {
      WebSocket?: WebSocketConstructor;
      default?: WebSocketConstructor;
    };
    const ctor = mod.WebSocket ?? mod.default;
    if (typeof ctor === "function") return ctor;
  } catch {
    // reported below
  }
  throw new Error(
    "agentwire: no WebSocket implementation: install the `ws` package (npm install ws) or pass `WebSocket` in the client options",
  );
}

/** A message's text: strings as they are, binary payloads decoded as UTF-8. */
export function messageText(data: unknown): string | null {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  if (Array.isArray(data)) {
    // `ws` may hand fragmented binary messages over as a list of buffers.
    const parts = data.filter((p): p is Uint8Array => ArrayBuffer.isView(p));
    const total = parts.reduce((n, p) => n + p.byteLength, 0);
    const joined = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      joined.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
      at += p.byteLength;
    }
    return new TextDecoder().decode(joined);
  }
  return null;
}
