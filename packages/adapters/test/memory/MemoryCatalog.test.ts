import { MemoryCatalogLive } from "../../src/memory/MemoryCatalog.js"
import { catalogContract } from "../contracts/CatalogContract.js"

catalogContract("memory", MemoryCatalogLive)
