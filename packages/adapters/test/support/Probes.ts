import { Effect } from "effect"

/** Runs `effect` until `done` holds for its result, at most `ms`, polling every `everyMs`; the last result. */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  ms: number,
  everyMs = 10
) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* effect
      if (done(a) || Date.now() > deadline) return a
      yield* Effect.sleep(`${everyMs} millis`)
    }
  })

/** A connection URL fit for a log line: the password masked, or a note naming the variable if it is no URL. */
export const withoutPassword = (url: string, variable: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return `<${variable} is not a URL>`
  }
}
