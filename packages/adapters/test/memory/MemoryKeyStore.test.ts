import { MemoryKeyStoreLive } from "../../src/memory/MemoryKeyStore.js"
import { keyStoreContract } from "../contracts/KeyStoreContract.js"

keyStoreContract("memory", MemoryKeyStoreLive)
