extension Dictionary {
    /// Gives back the storage of removed entries once fewer than a quarter of the slots are in
    /// use: a Swift dictionary keeps its peak capacity, so without this a table emptied by a
    /// retirement would hold the memory of its busiest sale for the daemon's life. O(count).
    mutating func shrinkIfSparse() {
        guard capacity > 64, count < capacity / 4 else { return }
        var compact = Self(minimumCapacity: count)
        for (key, value) in self { compact[key] = value }
        self = compact
    }
}
