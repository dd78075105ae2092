/**
 * The channel layer of the enclave and its parent: a stream channel is named by a vsock address
 * `(cid, port)`. In production it is a real vsock (`Deno.listen` / `Deno.connect` with
 * `transport: "vsock"`, which needs `--unstable-vsock`); in test mode it is a UNIX socket in a
 * shared folder, `<dir>/vsock-<cid>-<port>.sock`, so that a process in a network namespace with
 * only `lo` reaches its parent through nothing but these files (docs/enclave.md, "Tests").
 *
 * Deno only (Node has no vsock): the enclave side and the parent both run under Deno.
 *
 * Also here, because every bridge of both sides is one of them: {@link bridge} (two streams
 * piped both ways, half-closes passed on) and {@link forward} (each connection accepted on a
 * listener piped to a new connection from a dialer): the enclave's TCP-to-vsock forwarders
 * (KMS through the vsock-proxy, the gateway egress), its vsock-to-TCP ingress, and the parent's
 * mirror images of them.
 *
 * @example
 * ```ts
 * import { createChannels } from "./channel.ts";
 * const dir = await Deno.makeTempDir();
 * const enclave = createChannels({ mode: { kind: "unix", dir }, localCid: 16 });
 * const parent = createChannels({ mode: { kind: "unix", dir }, localCid: 3 });
 * const listener = enclave.listen(7100);
 * const accepted = listener.accept();
 * const conn = await parent.connect(16, 7100);
 * (await accepted).close();
 * conn.close();
 * listener.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

/** The CID a vsock listener binds to accept from any peer (`VMADDR_CID_ANY`). */
export const VMADDR_CID_ANY = -1;
/** The CID of the parent instance as seen from an enclave. */
export const PARENT_CID = 3;
/** The CID the test harness and the examples give the enclave (any value above 3 would do). */
export const DEFAULT_ENCLAVE_CID = 16;

/** Where channels live: real vsock, or UNIX sockets in a shared folder (test mode). */
export type ChannelMode = { readonly kind: "vsock" } | {
  readonly kind: "unix";
  readonly dir: string;
};

/** Options of {@link createChannels}. */
export interface ChannelOptions {
  /** vsock, or UNIX sockets in `dir`. */
  readonly mode: ChannelMode;
  /** This side's CID: names the socket files it listens on in test mode (unused with vsock). */
  readonly localCid: number;
}

/** Listening and connecting by vsock address. */
export interface Channels {
  /** The mode these channels use. */
  readonly mode: ChannelMode;
  /**
   * Listens on `port` of this side (any CID with vsock; the file of `localCid` in test mode, an
   * old file of a dead listener replaced).
   */
  listen(port: number): Deno.Listener;
  /** Connects to `(cid, port)`. */
  connect(cid: number, port: number): Promise<Deno.Conn>;
}

function checkPort(port: number): number {
  if (!Number.isSafeInteger(port) || port < 0 || port > 0xffff_ffff) {
    throw new RangeError(`vsock port: expected an integer in 0..2^32-1, got ${String(port)}`);
  }
  return port;
}

function checkCid(cid: number, what: string): number {
  if (!Number.isSafeInteger(cid) || cid < VMADDR_CID_ANY || cid > 0xffff_ffff) {
    throw new RangeError(`${what}: expected a vsock CID, got ${String(cid)}`);
  }
  return cid;
}

/**
 * The socket file standing in for vsock `(cid, port)` in test mode.
 * @param dir the shared folder.
 * @param cid the listener's CID.
 * @param port the port.
 * @returns `<dir>/vsock-<cid>-<port>.sock`.
 */
export function channelPath(dir: string, cid: number, port: number): string {
  return `${dir}/vsock-${checkCid(cid, "cid")}-${checkPort(port)}.sock`;
}

/**
 * Parses the `channel` setting of the enclave and parent programs: `vsock`, or `unix:<dir>`
 * (test mode).
 * @param text the setting.
 * @returns the mode.
 * @throws {RangeError} for anything else.
 */
export function parseChannelMode(text: string): ChannelMode {
  if (text === "vsock") return { kind: "vsock" };
  if (text.startsWith("unix:") && text.length > "unix:".length) {
    return { kind: "unix", dir: text.slice("unix:".length) };
  }
  throw new RangeError(`channel: expected "vsock" or "unix:<folder>", got "${text}"`);
}

/**
 * Creates the channels of one side.
 * @param options mode and this side's CID.
 * @returns listen / connect by vsock address.
 */
export function createChannels(options: ChannelOptions): Channels {
  const { mode } = options;
  const localCid = checkCid(options.localCid, "localCid");
  if (mode.kind === "vsock") {
    return {
      mode,
      listen: (port) =>
        Deno.listen({ transport: "vsock", cid: VMADDR_CID_ANY, port: checkPort(port) }),
      connect: (cid, port) =>
        Deno.connect({ transport: "vsock", cid: checkCid(cid, "cid"), port: checkPort(port) }),
    };
  }
  return {
    mode,
    listen(port) {
      const path = channelPath(mode.dir, localCid, port);
      try {
        Deno.removeSync(path); // a socket file left by a listener that died
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      return Deno.listen({ transport: "unix", path });
    },
    connect: (cid, port) =>
      Deno.connect({ transport: "unix", path: channelPath(mode.dir, cid, port) }),
  };
}

/**
 * Closes each of `resources` (connections, listeners), ignoring any that is already closed.
 * @param resources what to close.
 */
export function closeQuietly(...resources: readonly { close(): void }[]): void {
  for (const r of resources) {
    try {
      r.close();
    } catch {
      // already closed
    }
  }
}

/** A connection that can end its sending direction alone (TCP, UNIX, vsock). */
type HalfClosable = Deno.Conn & { closeWrite?: () => Promise<void> };

async function pump(from: Deno.Conn, to: HalfClosable): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite?.();
  } catch {
    // either side went away: the caller closes both
  }
}

/**
 * Pipes `a` and `b` both ways until both directions ended (an end of one direction is passed
 * on as a half-close), then closes both. Errors end the bridge; they are not thrown.
 * @param a one connection.
 * @param b the other.
 * @returns when both are closed.
 */
export async function bridge(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  await Promise.all([pump(a, b), pump(b, a)]);
  closeQuietly(a, b);
}

/**
 * Calls `onConn` with each connection `listener` accepts, until accepting fails (the listener
 * was closed, or broke).
 * @param listener the listener.
 * @param onConn takes each connection (synchronously; it starts its own work).
 * @returns the error that ended the loop.
 */
export async function acceptEach(
  listener: Deno.Listener,
  onConn: (conn: Deno.Conn) => void,
): Promise<unknown> {
  for (;;) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (e) {
      return e;
    }
    onConn(conn);
  }
}

/** A running forwarder (see {@link forward}). */
export interface Forwarder {
  /** Stops accepting and closes every open bridge. */
  close(): void;
  /** Resolves when the accept loop ended (closed, or its listener failed). */
  readonly done: Promise<void>;
}

/**
 * Accepts connections on `listener` and bridges each to a new connection from `dial`. A dial
 * that fails closes the accepted connection (and is reported to `onError`); the forwarder keeps
 * accepting.
 * @param listener where connections arrive.
 * @param dial opens the other end.
 * @param onError told of each failed dial (no secret in it: an address and an error name).
 * @returns the forwarder.
 */
export function forward(
  listener: Deno.Listener,
  dial: () => Promise<Deno.Conn>,
  onError: (e: unknown) => void = () => {},
): Forwarder {
  const open = new Set<Deno.Conn>();
  let closed = false;
  const done = acceptEach(listener, (conn) => {
    open.add(conn);
    dial().then(
      (other) => {
        if (closed) return closeQuietly(other, conn);
        open.add(other);
        return bridge(conn, other).finally(() => {
          open.delete(conn);
          open.delete(other);
        });
      },
      (e) => {
        onError(e);
        open.delete(conn);
        closeQuietly(conn);
      },
    );
  }).then((e) => {
    if (!closed) onError(e);
  });
  return {
    done,
    close() {
      if (closed) return;
      closed = true;
      closeQuietly(listener, ...open);
      open.clear();
    },
  };
}
