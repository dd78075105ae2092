/**
 * Serves the example wallet page: bundles `page.ts` with esbuild for the browser (ESM, ES2022;
 * a Node built-in anywhere in what it imports fails the build) and serves `/` (index.html),
 * `/page.js` and `/config.json` (the endpoints and the account the page starts with) on a
 * loopback port; port 0 lets the system choose, and the chosen one is in the result.
 *
 * `wallet-mpc` imports resolve like a consumer's: from the `node_modules` of the folder holding
 * the page (a project that installed the package), or, with `sources: true` (the repository's
 * `deno task example:wallet`), to the repository's sources through the package.json `exports`
 * map's `browser` condition (`./dist/lib/x.js` is built from `x.ts`).
 *
 * @example
 * ```ts
 * import { startWalletServer, type WalletPageConfig } from "./server.ts";
 * const config: WalletPageConfig = {
 *   serviceUrl: "http://127.0.0.1:50052",
 *   gatewayUrl: "http://127.0.0.1:8080",
 *   rpcUrl: "http://127.0.0.1:8545",
 *   token: "<the caller's token>",
 *   account: "alice",
 * };
 * const server = await startWalletServer({ port: 0, sources: true, config: () => config });
 * console.log(server.url); // the page, bundled from the repository's sources
 * await server.close();
 * ```
 * @module
 */
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The page's starting settings (all editable in the page). */
export interface WalletPageConfig {
  readonly serviceUrl: string;
  readonly gatewayUrl: string;
  readonly rpcUrl: string;
  readonly token: string;
  readonly account: string;
}

/** Options of {@link startWalletServer}. */
export interface WalletServerOptions {
  /** Loopback port (0: any free one). */
  readonly port: number;
  readonly host?: string;
  /** The folder of index.html and page.ts (default this folder). */
  readonly pageDir?: string;
  /** Resolve `wallet-mpc` to the repository's sources instead of an installed package. */
  readonly sources?: boolean;
  /** The settings `/config.json` serves (a function: read at each request). */
  readonly config: () => WalletPageConfig;
}

/** A running page server. */
export interface WalletServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "../..");

/** `wallet-mpc/<sub>` -> the repository's source file of the `browser` (else default) target. */
function sourceMap(): Map<string, string> {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  const out = new Map<string, string>();
  for (const [sub, entry] of Object.entries(pkg.exports as Record<string, unknown>)) {
    const e = entry as string | Record<string, string>;
    const target = typeof e === "string" ? e : e.browser ?? e.default;
    const m = /^\.\/dist\/lib\/(.+)\.js$/.exec(target);
    if (m) out.set(`wallet-mpc${sub.slice(1)}`, join(REPO, `${m[1]}.ts`));
  }
  return out;
}

/**
 * Bundles the page for the browser.
 * @param pageDir the folder of page.ts.
 * @param sources resolve `wallet-mpc` to the repository's sources.
 * @returns the bundle.
 * @throws with esbuild's messages when the bundle fails (a Node built-in, a missing import).
 */
export async function bundlePage(pageDir: string, sources: boolean): Promise<Uint8Array> {
  const esbuild = await import("esbuild");
  const map = sources ? sourceMap() : new Map<string, string>();
  try {
    const out = await esbuild.build({
      entryPoints: [join(pageDir, "page.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
      absWorkingDir: pageDir,
      plugins: [{
        name: "wallet-mpc-sources",
        setup(build) {
          build.onResolve({ filter: /^wallet-mpc(\/|$)/ }, (args) => {
            const path = map.get(args.path);
            return path ? { path } : undefined;
          });
        },
      }],
    });
    return out.outputFiles[0].contents;
  } finally {
    await esbuild.stop();
  }
}

/**
 * Bundles the page and serves it.
 * @param o port, page folder, how `wallet-mpc` resolves, the settings.
 * @returns the server; `close()` stops it.
 */
export async function startWalletServer(o: WalletServerOptions): Promise<WalletServer> {
  const pageDir = o.pageDir ?? HERE;
  const bundle = await bundlePage(pageDir, o.sources === true);
  const html = readFileSync(join(pageDir, "index.html"));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method !== "GET") res.writeHead(405).end();
    else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else if (path === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(bundle);
    } else if (path === "/config.json") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" })
        .end(JSON.stringify(o.config()));
    } else res.writeHead(404).end();
  });
  const host = o.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
