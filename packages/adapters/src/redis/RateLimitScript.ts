import { createHash } from "node:crypto"

/**
 * `RateLimitAlgorithm.decide` as one Lua script: every limit of one request is read, decided
 * and (only when the request is allowed) written in one atomic step on the server.
 *
 * Call: `KEYS[i]` is the counter of limit i; `ARGV[1]` is one string of integers separated by
 * spaces: `now`, `slackMs`, then per limit `limit` (negated for a shadow limit), `windowMs`,
 * `cost`. Reply: one string of integers, `allowed` (1 or 0), then per limit `remaining` and
 * `retryAfterMs` (-1 when undefined). The rest of an outcome follows from these and the request
 * (`exceeded` iff a retry time is given or the cost is above the limit; `resetMs` is
 * `windowMs - now mod windowMs`). One string each way rather than many arguments and an array:
 * the client's cost per call grows with every argument and reply element, and on a 3-limit call
 * it was the larger half. The inputs are integers below 2^53, which `tonumber` reads exactly;
 * every number the script prints is an integer below 1e14, which Lua prints exactly (`%.14g`).
 *
 * Each counter is a 32-byte string, `struct.pack("<dddd", window, current, previous, expiresAt)`
 * (four little-endian doubles, exact for these integers; see {@link decodeCounter}), exactly the
 * state the in-memory limiter keeps: `expiresAt` is `(window + 2) * windowMs` in the caller's
 * time, and a state past it is ignored, as in memory. (Binary rather than text because parsing
 * and formatting four numbers as text cost the server more than the rest of the decision.) The
 * key's PX TTL (time to `expiresAt` plus `slackMs`, set when a window starts and kept by later
 * writes in it) only collects garbage in the server's time; decisions never depend on it. All
 * keys are read with one MGET.
 *
 * Exactness. Lua numbers are doubles. The caller checks every input is an integer in range
 * (`limit` ≤ 1e9, `windowMs` ≤ 31 days, `cost` and `now` safe integers), so every stored count
 * is at most 2 × 1e9 and every factor below is < 2^33, but products such as `limit × windowMs`
 * reach 2^62. When every product of a limit stays below 2^51 they are computed as doubles
 * (exact: integers below 2^53); otherwise the same formulas run on a small bignum of base 2^16
 * limbs. `math.floor(a / b)` is exact for integers 0 ≤ a < 2^53, b ≥ 1: the rounding error of
 * a / b is below 1 / b, the smallest distance from a non-integer quotient to the next integer.
 * A cost above the limit is decided without arithmetic (it never fits), so `cost` can be any
 * safe integer.
 */
export const rateLimitLua = `
local BASE = 65536
local SMALL = 2251799813685248 -- 2^51
local floor, min = math.floor, math.min

-- The bignum is only built for a limit whose products reach 2^51 (closures cost on every call).
local function bignum()
  local function big(x)
    local t, i = {}, 0
    while x > 0 do
      local r = x % BASE
      i = i + 1
      t[i] = r
      x = (x - r) / BASE
    end
    return t
  end

  local function mul(a, b)
    local x, y = big(a), big(b)
    local nx, ny = #x, #y
    local t = {}
    for k = 1, nx + ny do t[k] = 0 end
    for i = 1, nx do
      local carry, xi = 0, x[i]
      for j = 1, ny do
        local v = t[i + j - 1] + xi * y[j] + carry
        local r = v % BASE
        t[i + j - 1] = r
        carry = (v - r) / BASE
      end
      t[i + ny] = carry
    end
    return t
  end

  local function add(x, y)
    local t, carry = {}, 0
    for k = 1, math.max(#x, #y) do
      local v = (x[k] or 0) + (y[k] or 0) + carry
      if v >= BASE then t[k] = v - BASE; carry = 1 else t[k] = v; carry = 0 end
    end
    if carry > 0 then t[#t + 1] = carry end
    return t
  end

  -- x - y, for x >= y
  local function sub(x, y)
    local t, borrow = {}, 0
    for k = 1, #x do
      local v = x[k] - (y[k] or 0) - borrow
      if v < 0 then t[k] = v + BASE; borrow = 1 else t[k] = v; borrow = 0 end
    end
    return t
  end

  local function cmp(x, y)
    for k = math.max(#x, #y), 1, -1 do
      local a, b = x[k] or 0, y[k] or 0
      if a ~= b then return a < b and -1 or 1 end
    end
    return 0
  end

  -- ceil(x / d) for 1 <= d < 2^37, when the quotient is below 2^53
  local function ceildiv(x, d)
    local q, r = 0, 0
    for k = #x, 1, -1 do
      local v = r * BASE + x[k]
      local qk = floor(v / d)
      r = v - qk * d
      q = q * BASE + qk
    end
    if r > 0 then q = q + 1 end
    return q
  end
  return { mul = mul, add = add, sub = sub, cmp = cmp, ceildiv = ceildiv }
end
local bn

-- ARGV[1]: "now slack limit windowMs cost limit windowMs cost ...", one string (cheaper to send than many)
local a, na = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 0
for v in string.gmatch(ARGV[1], "%S+") do
  na = na + 1
  a[na] = tonumber(v)
end
local now, slack = a[1], a[2]
local n = #KEYS
local raws = redis.call("MGET", unpack(KEYS))
-- per limit i, at 11 * (i - 1): cur, prev, same window as stored, small, admits, win, el, shadow, l, w, c
-- (presized for four limits: growing a table rehashes it each time its size doubles)
local st = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0 }
local allowed = true

for i = 1, n do
  local j = 3 * i
  local l, w, c = a[j], a[j + 1], a[j + 2]
  local sh = l < 0
  if sh then l = -l end
  local win = floor(now / w)
  local cur, prev, same = 0, 0, false
  local raw = raws[i]
  if raw then
    local sw, sc, sp, sx = 0, 0, 0, 0
    if #raw == 32 then sw, sc, sp, sx = struct.unpack("<dddd", raw) end
    if sx > now then
      if sw == win then
        cur, prev, same = sc, sp, true
      elseif sw == win - 1 then
        prev = sc
      end
    end
  end
  local el = now - win * w
  local m = cur + (c < l and c or l)
  if prev > m then m = prev end
  if l > m then m = l end
  local small = m * w < SMALL
  local admits
  if c > l then
    admits = false
  elseif small then
    admits = prev * (w - el) + (cur + c) * w <= l * w
  else
    bn = bn or bignum()
    admits = bn.cmp(bn.add(bn.mul(prev, w - el), bn.mul(cur + c, w)), bn.mul(l, w)) <= 0
  end
  if not admits and not sh then allowed = false end
  local k = 11 * (i - 1)
  st[k + 1], st[k + 2], st[k + 3], st[k + 4], st[k + 5], st[k + 6], st[k + 7], st[k + 8], st[k + 9], st[k + 10],
    st[k + 11] = cur, prev, same, small, admits, win, el, sh, l, w, c
end

local out = { allowed and 1 or 0 }
for i = 1, n do
  local k = 11 * (i - 1)
  local cur, prev, small, el, l, w, c = st[k + 1], st[k + 2], st[k + 4], st[k + 7], st[k + 9], st[k + 10], st[k + 11]
  local stored = cur
  if allowed then
    if st[k + 8] then
      stored = (c >= 2 * l) and 2 * l or min(cur + c, 2 * l)
    else
      stored = cur + c
    end
    local win = st[k + 6]
    local expires = (win + 2) * w
    local value = struct.pack("<dddd", win, stored, prev, expires)
    if st[k + 3] then
      -- same window as stored: the key already expires when this state does
      redis.call("SET", KEYS[i], value, "KEEPTTL")
    else
      redis.call("SET", KEYS[i], value, "PX", string.format("%d", expires - now + slack))
    end
  end
  local carried
  if small then
    carried = floor((prev * (w - el) + w - 1) / w)
  else
    bn = bn or bignum()
    carried = bn.ceildiv(bn.mul(prev, w - el), w)
  end
  local remaining = l - stored - carried
  if remaining < 0 then remaining = 0 end
  local retry = -1
  if not st[k + 5] and c <= l then
    if cur + c <= l then
      if small then
        retry = floor((prev * (w - el) - (l - cur - c) * w + prev - 1) / prev)
      else
        retry = bn.ceildiv(bn.sub(bn.mul(prev, w - el), bn.mul(l - cur - c, w)), prev)
      end
    else
      if small then
        retry = w - el + floor(((cur + c - l) * w + cur - 1) / cur)
      else
        retry = w - el + bn.ceildiv(bn.mul(cur + c - l, w), cur)
      end
    end
  end
  out[2 * i] = remaining
  out[2 * i + 1] = retry
end
return table.concat(out, " ")
`

/** A stored counter, read back (for tests and operators: `GET` returns these 32 bytes). */
export const decodeCounter = (
  raw: Buffer
): { window: number; current: number; previous: number; expiresAt: number } => ({
  window: raw.readDoubleLE(0),
  current: raw.readDoubleLE(8),
  previous: raw.readDoubleLE(16),
  expiresAt: raw.readDoubleLE(24)
})

/** The SHA-1 Redis files the script under, for EVALSHA. */
export const rateLimitSha = createHash("sha1").update(rateLimitLua).digest("hex")
