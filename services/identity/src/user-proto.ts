import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserSchema, type User } from "../../../gen/grocery/identity/v1/user_pb.js";
import { rolesOf, type UserRow } from "./users.js";

export function toUserProto(row: UserRow): User {
  return create(UserSchema, {
    id: row.id,
    username: row.username,
    email: row.email,
    roles: rolesOf(row),
    displayName: row.displayName,
    disabled: row.disabled,
    createTime: timestampFromDate(row.createTime),
    updateTime: timestampFromDate(row.updateTime),
  });
}
