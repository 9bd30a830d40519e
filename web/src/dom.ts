// Small DOM helpers and how users are named on the page.

import { ConnectError } from "@connectrpc/connect";
import type { User } from "./gen/rosetta/account/v1/account_pb";

type Child = Node | string | null | undefined | false;

/** An element with attributes (`on…` functions become listeners) and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | ((e: Event) => void) | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child) node.append(child);
  }
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} missing from the page`);
  return node as T;
}

/** The uid as pipe (QtQQ) clients show it: five digits, zero-padded. */
export function pipeUid(id: bigint): string {
  return id.toString().padStart(5, "0");
}

/** The name to show, then every handle the user has in the legacy protocols. */
export function displayName(user: User | undefined, id: bigint): string {
  if (!user) return `user ${id}`;
  return user.nickname || user.username || `user ${id}`;
}

/**
 * The handles a user is known by across protocols: pipe and CloudChat name users by numeric
 * uid, IMPS and DPC by user name, OurChat by ocid.
 */
export function handles(user: User | undefined, id: bigint): string {
  const parts = [`uid ${pipeUid(id)}`];
  if (user?.username) parts.unshift(`@${user.username}`);
  if (user?.ocid) parts.push(`ocid ${user.ocid}`);
  return parts.join(" · ");
}

export function errorText(err: unknown): string {
  if (err instanceof ConnectError) {
    return err.rawMessage || err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function time(ms: bigint): string {
  return ms ? new Date(Number(ms)).toLocaleTimeString() : "";
}
