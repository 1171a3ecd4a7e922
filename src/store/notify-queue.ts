/**
 * The queue of job notifications (contract §6) on a shared store (issue 15). A node writes a
 * notification here, claimed by itself, before it posts it, and removes it once posted (or
 * given up as a warning). A node that dies in between leaves the entry behind; a live node
 * that finds it (its claimer dead) posts it. The files store has no such queue: on one host a
 * notification is posted directly, as before. Delivery is at least once: a node that dies after
 * the post and before the removal leaves an entry that another node posts again.
 */
import type { Acquired } from "./owner-lock.js";

export interface QueuedNotification {
  /** Unique per notification: the run ID, the status and a random suffix. */
  id: string;
  runId: string;
  /** The partner whose `notify` (else the global one) names the hook: no URL or header here, so no secret in the database. */
  partner: string;
  status: "Started" | "Completed" | "Failed";
  message: string;
  /** ms since the epoch; another node looks at it only from then on (and only if its claimer is dead). */
  nextAttemptAt: number;
  createdAt: string;
}

export interface NotificationQueue {
  /** Persists the entry, already claimed by this process. */
  putClaimed(entry: QueuedNotification): Promise<void>;
  get(id: string): Promise<QueuedNotification | undefined>;
  /** Entries whose time has come, claimed or not (a claim is tested by `claim`), oldest first. */
  due(now: number): Promise<QueuedNotification[]>;
  /** Takes an entry; refused while another live process has it. */
  claim(id: string): Promise<Acquired>;
  remove(id: string): Promise<void>;
}
