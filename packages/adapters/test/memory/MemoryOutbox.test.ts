import { MemoryOutboxLive } from "../../src/memory/MemoryOutbox.js"
import { outboxContract } from "../contracts/OutboxContract.js"

outboxContract("memory", MemoryOutboxLive)
