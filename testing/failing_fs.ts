/**
 * A test file system for crash tests of atomic writes (platform/keyshare_file.ts and the key
 * stores on top of it): the chosen step fails like a crash, with EIO.
 * @module
 */
import * as fsp from "node:fs/promises";
import type { KeyShareFs } from "../platform/keyshare_file.ts";

/** A file system whose `step` fails (after writing half the bytes, for "write"). */
export function failingFs(step: "open-tmp" | "write" | "sync" | "rename"): KeyShareFs {
  const boom = () => Object.assign(new Error(`simulated crash at ${step}`), { code: "EIO" });
  return {
    rename: step === "rename" ? () => Promise.reject(boom()) : fsp.rename,
    unlink: fsp.unlink,
    open: (async (path: string, flags?: string, mode?: number) => {
      if (step === "open-tmp" && flags === "wx") throw boom();
      const fh = await fsp.open(path, flags, mode);
      if (flags !== "wx") return fh;
      return new Proxy(fh, {
        get(target, prop) {
          if (prop === "writeFile" && step === "write") {
            return async (data: Uint8Array) => {
              await target.writeFile(data.subarray(0, data.length >> 1));
              throw boom();
            };
          }
          if (prop === "sync" && step === "sync") return () => Promise.reject(boom());
          const v = Reflect.get(target, prop);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    }) as KeyShareFs["open"],
  };
}
