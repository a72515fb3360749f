import { MemoryProjectStoreLive } from "../../src/memory/MemoryProjectStore.js"
import { projectStoreContract } from "../contracts/ProjectStoreContract.js"

projectStoreContract("memory", MemoryProjectStoreLive)
