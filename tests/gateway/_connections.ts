/**
 * Connection-level helpers of the gateway's process tests: a raw TCP connection from a chosen
 * local address (another source on loopback is another address, `127.0.0.2`), and one value of
 * the gateway's Prometheus metrics.
 *
 * @module
 */
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { connect, type Socket } from "node:net";

/** A raw TCP connection to a server. */
export interface RawConnection {
  /** The socket. */
  readonly socket: Socket;
  /** Everything received so far (latin1). */
  received(): string;
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;
  /** Whether it has closed. */
  isClosed(): boolean;
}

/**
 * Opens a TCP connection to 127.0.0.1, optionally from a given local address, and resolves once
 * it is connected.
 *
 * @param port the server's port
 * @param localAddress the local address to connect from (default: the system's choice)
 * @returns the connection
 */
export async function openRaw(port: number, localAddress?: string): Promise<RawConnection> {
  const socket = connect({ port, host: "127.0.0.1", ...(localAddress ? { localAddress } : {}) });
  let data = "";
  let done = false;
  socket.on("data", (b: Uint8Array) => (data += new TextDecoder("latin1").decode(b)));
  socket.on("error", () => {});
  const closed = new Promise<void>((r) =>
    socket.once("close", () => {
      done = true;
      r();
    })
  );
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return { socket, received: () => data, closed, isClosed: () => done };
}

/**
 * Reads one series of a gateway's `/metrics`, on a connection of its own that the gateway closes
 * after answering (so it does not linger in the connection counts).
 *
 * @param url the gateway's base URL (`http://` or `https://`)
 * @param series the series as written, e.g. `gateway_connections` or
 * `gateway_connections_timed_out_total{phase="headers"}`
 * @param ca the CA certificate (PEM) of an `https://` gateway
 * @returns its value (0 when absent)
 */
export async function metric(url: string, series: string, ca?: string): Promise<number> {
  const get = url.startsWith("https:") ? httpsGet : httpGet;
  const text = await new Promise<string>((resolve, reject) => {
    const req = get(
      `${url}/metrics`,
      { agent: false, headers: { connection: "close" }, ca },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve(body));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
  });
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}
