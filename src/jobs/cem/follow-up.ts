/**
 * What as2 receive does for CEM after a request is in (issue 17): a request from a partner
 * whose cem.policy is "accept" is accepted (respond.ts: the certificate into the configuration
 * file, the decision recorded, the response sent), and a decided request whose response did not
 * arrive is answered again. It runs after each CEM request and once at start (what a killed
 * receiver left undone), one run at a time per process; respond.ts makes a repeat harmless.
 */
import type { Services } from "../receive/services.js";
import { decideCemRequest } from "./respond.js";

export function cemFollowUp(s: Services, configPath: string | undefined, afterChange: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const once = async () => {
    const list = await s.store.cem.list({ direction: "received" });
    for (const r of list) {
      const partner = s.config.partners[r.partner];
      if (!partner) continue;
      const auto = (r.state === "pending" || r.state === "expired") && partner.cem.policy === "accept";
      const redeliver = (r.state === "accepted" || r.state === "rejected") && r.response && !r.response.delivered && !r.response.error;
      if (!auto && !redeliver) continue;
      if (!configPath) {
        s.event({ event: "error", partner: r.partner, detail: `CEM request ${r.requestId}: cannot answer it without the configuration file's path` });
        continue;
      }
      try {
        const decision = r.state === "rejected" && !auto ? "reject" : "accept";
        const done = await decideCemRequest({ config: s.config, configPath, keys: s.keys, partner: r.partner, requestId: r.requestId, decision, signal: new AbortController().signal, now: s.now });
        if (done.configChanged) await afterChange();
        s.event({ event: "cem", partner: r.partner, detail: `CEM request ${r.requestId} ${done.record.state} (policy "${partner.cem.policy}"); response ${done.record.response?.delivered ? "delivered" : `not delivered: ${done.record.response?.error ?? "?"}`}` });
      } catch (e) {
        s.event({ event: "error", partner: r.partner, detail: `CEM request ${r.requestId}: ${(e as Error).message}` });
      }
    }
  };
  return async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      do { again = false; await once(); } while (again);
    })().finally(() => { running = undefined; });
    return running;
  };
}
