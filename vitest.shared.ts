import type { ViteUserConfig } from "vitest/config"

/** Settings every package's tests share. Properties run 1,000+ cases, so tests get room. */
export const shared: ViteUserConfig = {
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
}
