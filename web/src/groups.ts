// Groups: the caller's groups (opened as conversations), creating one with friends in it, and
// the invitations to groups the caller may accept or decline.

import { Direction, RequestState } from "./gen/rosetta/social/v1/social_pb";
import type { Api } from "./api";
import { byId, displayName, el, errorText } from "./dom";
import { key, type Target } from "./chat";

const PAGE = 100;

export class Groups {
  constructor(
    private api: Api,
    private status: (text: string) => void,
    private open: (target: Target, title: string) => void,
    private unreadText: (key: string) => string,
  ) {
    byId("create-group-btn").addEventListener("click", () => void this.create());
  }

  async refresh(): Promise<void> {
    await Promise.all([this.refreshGroups(), this.refreshInvitations()]);
  }

  private async refreshGroups(): Promise<void> {
    try {
      const { groups } = await this.api.social.listMyGroups({ page: { pageSize: PAGE } });
      const list = byId("groups");
      list.replaceChildren();
      for (const group of groups) {
        const target: Target = { kind: "group", id: group.id };
        const title = `${group.name} (group ${group.id})`;
        list.append(
          el(
            "li",
            { "data-testid": `group-${group.id}`, "data-name": group.name },
            el("button", { class: "open", onclick: () => this.open(target, title) }, `${group.name} · ${group.memberCount} members`),
            el("span", { class: "unread", "data-testid": `unread-${key(target)}` }, this.unreadText(key(target))),
          ),
        );
      }
    } catch (err) {
      this.status(`groups: ${errorText(err)}`);
    }
  }

  private async refreshInvitations(): Promise<void> {
    try {
      const { invitations } = await this.api.social.listGroupInvitations({
        direction: Direction.INCOMING,
        page: { pageSize: PAGE },
      });
      const list = byId("invitations");
      list.replaceChildren();
      for (const invitation of invitations) {
        if (invitation.state !== RequestState.PENDING) continue;
        const answer = (accept: boolean) => async () => {
          try {
            await this.api.social.respondGroupInvitation({
              invitation: { case: "invitationId", value: invitation.id },
              accept,
            });
            await this.refresh();
          } catch (err) {
            this.status(`invitation: ${errorText(err)}`);
          }
        };
        const inviter = invitation.inviter;
        list.append(
          el(
            "li",
            { "data-testid": `invitation-${invitation.groupId}`, "data-name": invitation.groupName },
            el("span", {}, `${invitation.groupName}, from ${displayName(inviter, inviter?.id ?? 0n)}`),
            el("button", { onclick: answer(true) }, "Join"),
            el("button", { onclick: answer(false) }, "Decline"),
          ),
        );
      }
    } catch (err) {
      this.status(`invitations: ${errorText(err)}`);
    }
  }

  private async create(): Promise<void> {
    const name = byId<HTMLInputElement>("group-name").value.trim();
    const members = byId<HTMLInputElement>("group-members")
      .value.split(/[\s,]+/)
      .filter((s) => /^\d+$/.test(s))
      .map(BigInt);
    if (!name) return;
    try {
      // Friends are added at once, anyone else is invited.
      const group = await this.api.social.createGroup({ name, memberIds: members });
      this.status(`group ${group.name} created`);
      await this.refreshGroups();
    } catch (err) {
      this.status(`create group: ${errorText(err)}`);
    }
  }
}
