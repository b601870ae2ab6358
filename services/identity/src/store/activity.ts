import { and, desc, eq, lt, or } from "drizzle-orm";
import type { Db } from "@local-e-grocery/platform/db.js";
import type { ActivityRecord } from "../model.js";
import { activity } from "../schema.js";

/** Queries over identity.activity. */
export interface ActivityQueries {
  insertActivity(event: ActivityRecord): Promise<void>;
  /** Up to `limit` of the user's events, newest first, after (createTime, id). */
  listActivity(userId: string, after: { createTime: Date; id: string } | undefined, limit: number): Promise<ActivityRecord[]>;
  deleteActivityBefore(time: Date): Promise<void>;
}

export function activityQueries(db: Db): ActivityQueries {
  return {
    async insertActivity(event) {
      await db.insert(activity).values(event);
    },
    async listActivity(userId, after, limit) {
      const position =
        after === undefined
          ? undefined
          : or(lt(activity.createTime, after.createTime), and(eq(activity.createTime, after.createTime), lt(activity.id, after.id)));
      return db
        .select()
        .from(activity)
        .where(and(eq(activity.userId, userId), position))
        .orderBy(desc(activity.createTime), desc(activity.id))
        .limit(limit);
    },
    async deleteActivityBefore(time) {
      await db.delete(activity).where(lt(activity.createTime, time));
    },
  };
}
