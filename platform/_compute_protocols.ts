/**
 * The protocol machines a compute worker runs, by the name a job carries (private to
 * `platform/`: the pool looks a machine up by identity, the worker by name). A machine not
 * listed here runs inline on the caller's thread.
 * @module
 */
import { auxInfo } from "../core/protocols/aux_info.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { presignProtocol } from "../core/protocols/presign.ts";
import { refresh } from "../core/protocols/refresh.ts";
import { fullSignProtocol } from "../core/protocols/sign.ts";
import type { Protocol, ProtocolState } from "../core/protocols/types.ts";

// deno-lint-ignore no-explicit-any
type AnyProtocol = Protocol<any, any, any>;

/** The machines by job name. */
export const COMPUTE_PROTOCOLS: Readonly<Record<string, AnyProtocol>> = {
  keygen,
  "aux-info": auxInfo,
  refresh,
  presign: presignProtocol,
  "full-sign": fullSignProtocol,
};

const NAMES = new Map<AnyProtocol, string>(
  Object.entries(COMPUTE_PROTOCOLS).map(([name, p]) => [p, name]),
);

/**
 * The job name of a machine.
 * @param p a machine.
 * @returns its name in {@link COMPUTE_PROTOCOLS}, or undefined when workers do not run it.
 */
export function computeName<I, S extends ProtocolState, O>(
  p: Protocol<I, S, O>,
): string | undefined {
  return NAMES.get(p as AnyProtocol);
}
