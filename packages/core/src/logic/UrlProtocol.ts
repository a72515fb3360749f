/** Whether `url` parses as a URL whose scheme is one of `protocols` (each with its colon, e.g. "https:"). */
export const hasProtocol = (...protocols: ReadonlyArray<string>) => (url: string): boolean => {
  try {
    return protocols.includes(new URL(url).protocol)
  } catch {
    return false
  }
}

export const isHttpUrl = hasProtocol("http:", "https:")
