/**
 * One small interface over the two kinds of threads (private to `platform/`): a Web Worker in
 * Deno (and any runtime with a global `Worker`), a `worker_threads` Worker in Node. The worker's
 * side of the same interface is {@link workerPort}.
 *
 * Under Node, a `.ts` worker module runs through tsx like its parent (`node --import tsx`): a
 * worker thread does not inherit the parent's module hooks in Node 20, so the thread starts
 * with a one-line bootstrap that registers tsx's loader and then imports the module.
 * @module
 */
import { parentPort, Worker as NodeWorker } from "node:worker_threads";

/** What the host side sees of a thread. */
export interface WorkerLink {
  /** Posts one message (structured clone). */
  post(message: unknown): void;
  /** Stops the thread now, whatever it runs. */
  terminate(): void;
}

/** The events of a thread. */
export interface WorkerEvents {
  message(data: unknown): void;
  /** An uncaught error or an exit the host did not ask for; called at most once. */
  failed(reason: string): void;
}

interface WebWorkerLike {
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string; preventDefault(): void }) => void) | null;
  onmessageerror: ((e: unknown) => void) | null;
  postMessage(m: unknown): void;
  terminate(): void;
}

type WebWorkerCtor = new (url: string, options: { type: "module" }) => WebWorkerLike;

function isDeno(): boolean {
  return typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
}

/**
 * Starts a thread running the module at `url`.
 * @param url the worker module (a file URL).
 * @param on where its messages and its failure go.
 * @returns the link to post to and terminate it.
 */
export function spawnWorker(url: URL, on: WorkerEvents): WorkerLink {
  let over = false;
  const fail = (reason: string) => {
    if (over) return;
    over = true;
    on.failed(reason);
  };
  const WebWorker = (globalThis as { Worker?: WebWorkerCtor }).Worker;
  if (isDeno() && WebWorker) {
    const w = new WebWorker(url.href, { type: "module" });
    w.onmessage = (e) => on.message(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      fail(`uncaught error in the worker: ${e.message ?? "unknown"}`);
    };
    w.onmessageerror = () => fail("a message from the worker could not be read");
    return {
      post: (m) => w.postMessage(m),
      terminate: () => {
        over = true;
        w.terminate();
      },
    };
  }
  const w = url.pathname.endsWith(".ts")
    ? new NodeWorker(tsxBootstrap(url), { eval: true })
    : new NodeWorker(url);
  w.on("message", (m) => on.message(m));
  w.on("error", (e: Error) => fail(`uncaught error in the worker: ${e?.message ?? e}`));
  w.on("messageerror", () => fail("a message from the worker could not be read"));
  w.on("exit", (code) => fail(`the worker exited (code ${code})`));
  return {
    post: (m) => w.postMessage(m),
    terminate: () => {
      over = true;
      void w.terminate();
    },
  };
}

/** The script of a Node worker thread that loads a `.ts` module through tsx. */
function tsxBootstrap(url: URL): string {
  const api = import.meta.resolve("tsx/esm/api");
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); ` +
    `return import(${JSON.stringify(url.href)}); });`;
}

/** The worker's side: where it receives jobs and posts answers. */
export interface WorkerPort {
  post(message: unknown): void;
  onMessage(handler: (data: unknown) => void): void;
}

/**
 * The port of the thread this code runs in: `parentPort` in a Node worker thread, the global
 * scope in a Web Worker.
 * @returns the port.
 * @throws {TypeError} on the main thread.
 */
export function workerPort(): WorkerPort {
  if (parentPort) {
    const port = parentPort;
    return { post: (m) => port.postMessage(m), onMessage: (h) => port.on("message", h) };
  }
  const scope = globalThis as unknown as {
    postMessage?: (m: unknown) => void;
    addEventListener(type: "message", h: (e: { data: unknown }) => void): void;
  };
  if (typeof scope.postMessage !== "function") {
    throw new TypeError("workerPort: not running in a worker");
  }
  return {
    post: (m) => scope.postMessage!(m),
    onMessage: (h) => scope.addEventListener("message", (e) => h(e.data)),
  };
}
