/**
 * What the store and the leased ledgers of several gateway processes agree on about leases: the
 * idempotency keys of lease holds start with {@link leaseKeyPrefix}, and a withdrawal asks every
 * gateway to give a wallet's leases back by a notice on {@link leaseReturnChannel} whose payload
 * is the project id.
 */
export const leaseKeyPrefix = "lease:"

export const leaseReturnChannel = "tollgate_lease_return"
