// What a person can do about an error, by its stable code (never by its text). The engine's
// message is already a sentence that says what went wrong and what to try; this adds the
// way there in the app: a settings page, or the exact command to run elsewhere.

import type { ErrorBody } from "./bindings/ErrorBody";
import type { Profile } from "./bindings/Profile";

export interface Remedy {
  /** Offer to open the settings (gateways, tokens, models). */
  settings?: boolean;
  /** A command to run somewhere else, shown to copy. */
  command?: string;
  /** Offer to fetch the built-in model. */
  fetchModel?: boolean;
  /** One more sentence: which token the gateway refused. */
  detail?: string;
}

/** Where a profile's token comes from, as a sentence. */
export function tokenSource(p: Profile): string {
  if (p.token_keyring) return `The token of ${p.name} is kept in the system keyring.`;
  if (p.token_env) return `The token of ${p.name} comes from the environment variable ${p.token_env}.`;
  if (p.token_file) return `The token of ${p.name} comes from the file ${p.token_file}.`;
  return `${p.name} has no token set; add one in the settings.`;
}

/** `gateways`: the profiles, to say which token a gateway refused (a reply's stored error has
 * no data; `gateway` then names the conversation's gateway). */
export function remedy(e: ErrorBody, gateways: Profile[] = [], gateway?: string | null): Remedy | null {
  const data = (e.data ?? {}) as Record<string, unknown>;
  switch (e.code) {
    case "gateway.pairing_required":
      return typeof data.request_id === "string" ? { command: `openclaw devices approve ${data.request_id}` } : null;
    case "gateway.unauthorized":
    case "gateway.forbidden": {
      const name = typeof data.gateway === "string" ? data.gateway : gateway;
      const profile = gateways.find((p) => p.name === name);
      return { settings: true, detail: profile ? tokenSource(profile) : undefined };
    }
    case "gateway.not_found":
    case "gateway.unreachable":
    case "gateway.unknown":
    case "gateway.local_unavailable":
    case "keyring.unavailable":
      return { settings: true };
    case "model.missing":
      return { fetchModel: true, settings: true };
    case "model.invalid":
      return { settings: true };
    default:
      return null;
  }
}

/** The engine's message as a sentence on its own: capitalised, with a full stop. */
export function sentence(message: string): string {
  const s = message.trim();
  if (!s) return s;
  const first = s[0].toUpperCase() + s.slice(1);
  return /[.!?)]$/.test(first) ? first : `${first}.`;
}
