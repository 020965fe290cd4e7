// A thin, safe wrapper over the system sqlite3 C API: one connection, prepared statements,
// errors as values carrying SQLite's codes. It owns the handles and frees them; it knows
// nothing of FlashSale's schema. A connection and its statements are used by one thread at a
// time (opened with SQLITE_OPEN_NOMUTEX), so neither type is Sendable.

import CSQLite

/// An SQLite failure: the primary result code, the extended code and SQLite's message.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The primary result code (`SQLITE_FULL`, `SQLITE_IOERR`, ...).
    public let code: Int32
    /// The extended result code (`SQLITE_IOERR_FSYNC`, ...); equal to `code` when there is none.
    public let extendedCode: Int32
    /// SQLite's message, or ours for failures found outside SQLite.
    public let message: String

    /// Creates an error; `extendedCode` defaults to `code`.
    public init(code: Int32, extendedCode: Int32? = nil, message: String) {
        self.code = code
        self.extendedCode = extendedCode ?? code
        self.message = message
    }

    /// The last error of connection `handle`, or of `fallbackCode` when there is no handle.
    init(handle: OpaquePointer?, fallbackCode: Int32) {
        guard let handle else {
            self.init(code: fallbackCode, message: String(cString: sqlite3_errstr(fallbackCode)))
            return
        }
        let extended = sqlite3_extended_errcode(handle)
        self.init(code: extended & 0xff, extendedCode: extended, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// `sqlite error <code>/<extended>: <message>`.
    public var description: String { "sqlite error \(code)/\(extendedCode): \(message)" }
}

/// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the bind call returns.
///
/// The C macro is a cast of -1 to a function pointer, which Swift does not import.
private let sqliteTransient = unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)

/// One open SQLite connection, closed when the last reference (its statements hold one) goes.
final class SQLiteDatabase {
    /// How a connection is opened (`SQLITE_OPEN_*`).
    struct OpenFlags: OptionSet {
        let rawValue: Int32
        /// Read only.
        static let readOnly = OpenFlags(rawValue: SQLITE_OPEN_READONLY)
        /// Read and write (read only if the file is write-protected).
        static let readWrite = OpenFlags(rawValue: SQLITE_OPEN_READWRITE)
        /// Create the file if missing (with `readWrite`).
        static let create = OpenFlags(rawValue: SQLITE_OPEN_CREATE)
        /// No connection mutex: the caller guarantees one thread at a time.
        static let noMutex = OpenFlags(rawValue: SQLITE_OPEN_NOMUTEX)
    }

    /// The raw handle; valid for the life of this object.
    let handle: OpaquePointer

    /// Opens (or creates, with `.create`) the database at `path`.
    init(path: String, flags: OpenFlags) throws(SQLiteError) {
        var handle: OpaquePointer?
        let code = sqlite3_open_v2(path, &handle, flags.rawValue, nil)
        guard code == SQLITE_OK, let handle else {
            let error = SQLiteError(handle: handle, fallbackCode: code)
            sqlite3_close_v2(handle)
            throw error
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit {
        // close_v2 defers the close until every statement is finalized, so order does not matter.
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows we need (DDL, pragmas that set).
    func exec(_ sql: String) throws(SQLiteError) {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw SQLiteError(handle: handle, fallbackCode: code) }
    }

    /// Compiles one statement for repeated use.
    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(database: self, sql: sql)
    }

    /// Waits up to `milliseconds` for another connection's lock before failing with `SQLITE_BUSY`.
    func setBusyTimeout(milliseconds: Int32) throws(SQLiteError) {
        let code = sqlite3_busy_timeout(handle, milliseconds)
        guard code == SQLITE_OK else { throw SQLiteError(handle: handle, fallbackCode: code) }
    }

    /// Whether no transaction is open (SQLite's autocommit mode).
    var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes(handle)) }
}

/// A compiled statement: bind by 1-based index, step, read columns by 0-based index, reset.
final class SQLiteStatement {
    /// The connection, kept alive while the statement lives.
    let database: SQLiteDatabase
    /// The raw statement; finalized in `deinit`.
    let handle: OpaquePointer

    fileprivate init(database: SQLiteDatabase, sql: String) throws(SQLiteError) {
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw SQLiteError(handle: database.handle, fallbackCode: code)
        }
        self.database = database
        self.handle = handle
    }

    deinit {
        sqlite3_finalize(handle)
    }

    private func check(_ code: Int32) throws(SQLiteError) {
        guard code == SQLITE_OK else { throw SQLiteError(handle: database.handle, fallbackCode: code) }
    }

    /// Binds an integer to parameter `index` (1-based).
    func bind(_ value: Int64, at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    /// Binds text to parameter `index` (1-based); SQLite copies it (`SQLITE_TRANSIENT`).
    func bind(_ value: String, at index: Int32) throws(SQLiteError) {
        var value = value
        let code = value.withUTF8 { bytes -> Int32 in
            // An empty buffer may have no base address, and a null pointer would bind NULL.
            guard let base = bytes.baseAddress else {
                return sqlite3_bind_text(handle, index, "", 0, sqliteTransient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                sqlite3_bind_text(handle, index, $0, Int32(bytes.count), sqliteTransient)
            }
        }
        try check(code)
    }

    /// Binds `bytes` as text (UTF-8 the caller vouches for) to parameter `index` (1-based);
    /// SQLite copies them.
    func bind(utf8 bytes: [UInt8], at index: Int32) throws(SQLiteError) {
        let code = bytes.withUnsafeBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return sqlite3_bind_text(handle, index, "", 0, sqliteTransient) }
            return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                sqlite3_bind_text(handle, index, $0, Int32(buffer.count), sqliteTransient)
            }
        }
        try check(code)
    }

    /// Binds `bytes` as a blob to parameter `index` (1-based); SQLite copies them.
    func bind(blob bytes: [UInt8], at index: Int32) throws(SQLiteError) {
        let code = bytes.withUnsafeBytes { buffer -> Int32 in
            sqlite3_bind_blob(handle, index, buffer.baseAddress, Int32(buffer.count), sqliteTransient)
        }
        try check(code)
    }

    /// Binds text, or NULL when `value` is nil, to parameter `index` (1-based).
    func bind(_ value: String?, at index: Int32) throws(SQLiteError) {
        if let value { try bind(value, at: index) } else { try bindNull(at: index) }
    }

    /// Binds NULL to parameter `index` (1-based).
    func bindNull(at index: Int32) throws(SQLiteError) {
        try check(sqlite3_bind_null(handle, index))
    }

    /// Runs the statement one step: true when a row is ready to read, false when done.
    @discardableResult
    func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code: throw SQLiteError(handle: database.handle, fallbackCode: code)
        }
    }

    /// Runs a statement that returns no rows, then resets it for the next use.
    func execute() throws(SQLiteError) {
        defer { reset() }
        try step()
    }

    /// Readies the statement for another run; bindings are kept until rebound or cleared.
    ///
    /// Errors of the last step were already thrown by `step()`, so the code returned here is not.
    func reset() {
        sqlite3_reset(handle)
    }

    /// Sets every parameter back to NULL.
    func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    /// Whether column `index` (0-based) of the current row is NULL.
    func isNull(at index: Int32) -> Bool {
        sqlite3_column_type(handle, index) == SQLITE_NULL
    }

    /// Column `index` (0-based) of the current row as an integer (NULL reads as 0).
    func int64(at index: Int32) -> Int64 {
        sqlite3_column_int64(handle, index)
    }

    /// Whether column `index` (0-based) of the current row holds exactly `bytes` (NULL holds none).
    func columnEquals(_ bytes: [UInt8], at index: Int32) -> Bool {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count == bytes.count else { return false }
        guard count > 0, let text = sqlite3_column_text(handle, index) else { return true }
        return bytes.elementsEqual(UnsafeBufferPointer(start: text, count: count))
    }

    /// Column `index` (0-based) of the current row as text; nil when NULL.
    func string(at index: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// Column `index` (0-based) of the current row as bytes (NULL reads as none).
    func blob(at index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let bytes = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}
