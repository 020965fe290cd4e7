import NIOCore

/// When a connection must have sent something, as a pure state machine: a connection waiting
/// for a request gets the idle timeout; once a request's first byte arrives, the whole request
/// must arrive within the read timeout (a slowloris client trickling its head or body is
/// dropped however often it sends a byte); while the server answers, no clock runs.
struct ReadDeadlineStateMachine {
    enum State: Equatable {
        /// Waiting for the next request's first byte.
        case idle
        /// A request is arriving.
        case reading
        /// Requests are being answered; `bytesWaiting` when the next has already started.
        case answering(requests: Int, bytesWaiting: Bool)
    }

    /// What the handler does next.
    enum Action: Equatable {
        /// (Re)start the deadline, ms from now.
        case arm(ms: Int64)
        /// Stop the deadline.
        case disarm
        /// Nothing changes.
        case none
    }

    let idleTimeoutMs: Int64
    let readTimeoutMs: Int64
    private(set) var state = State.idle

    init(idleTimeoutMs: Int64, readTimeoutMs: Int64) {
        self.idleTimeoutMs = idleTimeoutMs
        self.readTimeoutMs = readTimeoutMs
    }

    /// The connection opened.
    func start() -> Action { .arm(ms: idleTimeoutMs) }

    /// Bytes arrived.
    mutating func bytesRead() -> Action {
        switch state {
        case .idle:
            state = .reading
            return .arm(ms: readTimeoutMs)
        case .reading:
            return .none
        case .answering(let requests, _):
            state = .answering(requests: requests, bytesWaiting: true)
            return .none
        }
    }

    /// A whole request (head, body, end) was decoded.
    mutating func requestComplete() -> Action {
        switch state {
        case .idle, .reading:
            state = .answering(requests: 1, bytesWaiting: false)
        case .answering(let requests, _):
            // A pipelined request: its bytes are all here.
            state = .answering(requests: requests + 1, bytesWaiting: false)
        }
        return .disarm
    }

    /// A response was written in full.
    mutating func responseSent() -> Action {
        guard case .answering(let requests, let bytesWaiting) = state else { return .none }
        if requests > 1 {
            state = .answering(requests: requests - 1, bytesWaiting: bytesWaiting)
            return .none
        }
        state = bytesWaiting ? .reading : .idle
        return .arm(ms: bytesWaiting ? readTimeoutMs : idleTimeoutMs)
    }
}

/// Events the HTTP handler sends (outbound) to `ReadDeadlineHandler`.
enum ReadDeadlineEvent {
    /// A whole request was decoded.
    case requestComplete
    /// A response was written in full.
    case responseSent
}

/// Carries out `ReadDeadlineStateMachine` at the front of the pipeline (raw bytes), closing
/// the connection when its deadline passes.
final class ReadDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: ReadDeadlineStateMachine
    /// When the connection is closed unless the machine moves on; nil: no clock runs.
    private var deadline: NIODeadline?
    /// The one pending wake-up, at `timerAt`. Arming only moves `deadline`: a wake-up that
    /// finds the deadline later sleeps again, so a kept-alive connection schedules a timer
    /// about once per timeout instead of twice per request (each a heap insert and a cancel).
    private var timer: Scheduled<Void>?
    private var timerAt = NIODeadline.distantFuture

    init(idleTimeoutMs: Int64, readTimeoutMs: Int64) {
        machine = ReadDeadlineStateMachine(idleTimeoutMs: idleTimeoutMs, readTimeoutMs: readTimeoutMs)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { run(machine.start(), context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        run(machine.start(), context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stopTimer()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stopTimer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        run(machine.bytesRead(), context: context)
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? ReadDeadlineEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .requestComplete: run(machine.requestComplete(), context: context)
        case .responseSent: run(machine.responseSent(), context: context)
        }
        promise?.succeed(())
    }

    private func run(_ action: ReadDeadlineStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            return
        case .disarm:
            deadline = nil
        case .arm(let ms):
            let at = NIODeadline.now() + .milliseconds(ms)
            deadline = at
            if timer == nil || at < timerAt { wake(at: at, context: context) }
        }
    }

    private func wake(at: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerAt = at
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.timerAt = .distantFuture
            guard let deadline = handler.deadline else { return }
            if deadline <= .now() {
                context.channel.close(promise: nil)
            } else {
                handler.wake(at: deadline, context: context)
            }
        }
    }

    private func stopTimer() {
        deadline = nil
        timer?.cancel()
        timer = nil
        timerAt = .distantFuture
    }
}
