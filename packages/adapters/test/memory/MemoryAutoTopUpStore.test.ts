import { MemoryAutoTopUpStoreLive } from "../../src/memory/MemoryAutoTopUpStore.js"
import { autoTopUpStoreContract } from "../contracts/AutoTopUpStoreContract.js"

autoTopUpStoreContract("memory", MemoryAutoTopUpStoreLive)
