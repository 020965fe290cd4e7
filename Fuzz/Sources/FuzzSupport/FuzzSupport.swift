// What every fuzz target shares: handing `main` over to libFuzzer's driver, running async
// code from its synchronous callback, and the engine the ops targets drive.

import Dispatch
import FlashSale
import FlashSaleJournal
import FlashSaleOps
import Logging

/// A libFuzzer entry point: one input, 0 to keep going (a crash is the finding).
public typealias FuzzTestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer's driver on `testOneInput`. SwiftPM links an executable with `main` bound to
/// `<module>_main`, so each target's `@_cdecl("<module>_main")` calls this.
public func runLibFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ testOneInput: FuzzTestOneInput
) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzTestOneInput
) -> CInt

/// The input's bytes (libFuzzer may pass a null pointer for the empty input).
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: size == 0 ? nil : data, count: size)
}

/// Runs `body` on the concurrency pool and waits for it (libFuzzer's callback is synchronous).
public func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let result = ResultBox<T>()
    Task {
        result.value = await body()
        done.signal()
    }
    done.wait()
    return result.value!
}

/// Carries a task's result to the thread waiting on the semaphore (written before the signal,
/// read after the wait).
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    var value: T?
}

/// A ready engine on the demo configuration, no journal, with `opsSecret` as the ops password
/// and a watch hub as its observer: what the ops targets drive. Logs only criticals.
public func makeDemoEngine(opsSecret: String, label: String) -> (engine: SaleEngine, watchHub: StockWatchHub) {
    blocking {
        var logger = Logger(label: label)
        logger.logLevel = .critical
        var config = try! SaleConfig.load(path: nil, environment: ["FLASHSALE_SECRETS_OPS": opsSecret], nowMs: SystemClock().nowMs())
        config.journal.enabled = false
        let engine = SaleEngine(config: config, clock: SystemClock(), journal: nil, logger: logger)
        let hub = StockWatchHub()
        await engine.inventory.setObserver(hub)
        await engine.recover(from: RecoveredState())
        return (engine, hub)
    }
}
