import { Schema } from "effect"

/** One problem in a configuration file: the field's path (`routes[1].upstream`) and what is wrong with it. */
export const ConfigFileIssue = Schema.Struct({ field: Schema.String, message: Schema.String })
export type ConfigFileIssue = typeof ConfigFileIssue.Type

/**
 * The configuration file could not be used: unreadable, not JSON, or invalid. `path` is the
 * file's; `message` names the file and lists every issue as `<field.path>: <message>`, so the
 * operator can fix them all in one go.
 */
export class ConfigFileError extends Schema.TaggedError<ConfigFileError>()("ConfigFileError", {
  path: Schema.String,
  message: Schema.String,
  issues: Schema.Array(ConfigFileIssue)
}) {}
