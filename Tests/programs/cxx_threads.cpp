// Multi-threaded C++ workload for the program tests.
//
// Eight threads each build a std::map<std::string, std::vector<int>>, grow
// strings by concatenation, allocate over-aligned objects with new/delete
// (alignas(64) and alignas(256), checked), and hand shared_ptr-owned objects
// to the next thread through a mutex-protected queue, so memory is regularly
// freed by a thread other than the one that allocated it. The output is a
// deterministic checksum per thread plus a total; any alignment violation or
// lost/corrupted message makes the program print an error and exit non-zero.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr int kThreads = 8;
constexpr int kRounds = 40000;

std::atomic<int> g_errors{0};

void report(const char* what, int thread, long detail) {
    std::fprintf(stderr, "error: %s (thread %d, detail %ld)\n", what, thread, detail);
    g_errors.fetch_add(1);
}

struct alignas(64) Line64 {
    uint64_t words[8];
    explicit Line64(uint64_t seed) {
        for (int i = 0; i < 8; i++) words[i] = seed * 31 + i;
    }
};

struct alignas(256) Block256 {
    unsigned char bytes[256 * 3];
    explicit Block256(unsigned char fill) { std::memset(bytes, fill, sizeof bytes); }
};

struct Message {
    int from;
    int seq;
    std::string text;
    std::vector<int> payload;
};

class Mailbox {
  public:
    void push(std::shared_ptr<Message> m) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            queue_.push_back(std::move(m));
        }
        cv_.notify_one();
    }
    std::shared_ptr<Message> pop() {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty(); });
        auto m = std::move(queue_.front());
        queue_.pop_front();
        return m;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Message>> queue_;
};

Mailbox g_boxes[kThreads];

uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

uint64_t hash_str(const std::string& s) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

uint64_t worker(int id) {
    uint64_t sum = 0;
    uint32_t rng = 2463534242u + static_cast<uint32_t>(id) * 7919u;
    auto next = [&rng] {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        return rng;
    };

    std::map<std::string, std::vector<int>> map;
    std::string text;
    std::vector<Line64*> lines;
    std::vector<Block256*> blocks;
    const int target = (id + 1) % kThreads;

    for (int round = 0; round < kRounds; round++) {
        // Map of string -> vector, with growth and erasure.
        std::string key = "t" + std::to_string(id) + "-k" + std::to_string(next() % 1500);
        auto& vec = map[key];
        for (int j = 0; j < static_cast<int>(next() % 24); j++) vec.push_back(round + j);
        if (round % 7 == 0 && !map.empty()) map.erase(map.begin());

        // String concatenation; reset periodically so it grows and shrinks.
        text += key;
        text += ':';
        text += std::to_string(round);
        if (text.size() > 20000) {
            sum = mix(sum, hash_str(text));
            text.clear();
            text.shrink_to_fit();
        }

        // Over-aligned allocations.
        auto* line = new Line64(static_cast<uint64_t>(round) * (id + 1));
        if (reinterpret_cast<uintptr_t>(line) % 64 != 0)
            report("Line64 misaligned", id, static_cast<long>(reinterpret_cast<uintptr_t>(line) % 64));
        lines.push_back(line);
        if (round % 3 == 0) {
            auto* block = new Block256(static_cast<unsigned char>(round));
            if (reinterpret_cast<uintptr_t>(block) % 256 != 0)
                report("Block256 misaligned", id, static_cast<long>(reinterpret_cast<uintptr_t>(block) % 256));
            blocks.push_back(block);
        }
        if (round % 5 == 0) {
            auto* arr = new Line64[3]{Line64(1), Line64(2), Line64(3)};
            if (reinterpret_cast<uintptr_t>(arr) % 64 != 0) report("Line64[] misaligned", id, round);
            sum = mix(sum, arr[2].words[7]);
            delete[] arr;
        }
        if (lines.size() > 200) {
            for (size_t i = 0; i < lines.size(); i += 2) {
                sum = mix(sum, lines[i]->words[round % 8]);
                delete lines[i];
                lines[i] = nullptr;
            }
            std::vector<Line64*> kept;
            for (auto* l : lines)
                if (l) kept.push_back(l);
            lines.swap(kept);
        }
        if (blocks.size() > 40) {
            for (auto* b : blocks) {
                for (size_t i = 0; i < sizeof b->bytes; i += 97)
                    if (b->bytes[i] != b->bytes[0]) report("Block256 corrupted", id, static_cast<long>(i));
                sum = mix(sum, b->bytes[0]);
                delete b;
            }
            blocks.clear();
        }

        // Pass a message to the next thread, receive one from the previous.
        if (round % 4 == 0) {
            auto m = std::make_shared<Message>();
            m->from = id;
            m->seq = round;
            m->text = "msg-" + std::to_string(id) + "-" + std::to_string(round) + std::string(next() % 300, 'x');
            m->payload.assign(next() % 100 + 1, round);
            g_boxes[target].push(std::move(m));

            auto got = g_boxes[id].pop();
            int expected_from = (id + kThreads - 1) % kThreads;
            if (got->from != expected_from || got->seq != round) report("unexpected message", id, got->seq);
            std::string prefix = "msg-" + std::to_string(got->from) + "-" + std::to_string(got->seq);
            if (got->text.compare(0, prefix.size(), prefix) != 0) report("message text corrupted", id, got->seq);
            for (int v : got->payload)
                if (v != got->seq) {
                    report("payload corrupted", id, v);
                    break;
                }
            sum = mix(sum, hash_str(got->text) + got->payload.size());
        }
    }

    for (auto* l : lines) {
        sum = mix(sum, l->words[0]);
        delete l;
    }
    for (auto* b : blocks) {
        sum = mix(sum, b->bytes[1]);
        delete b;
    }
    for (const auto& kv : map) {
        sum = mix(sum, hash_str(kv.first));
        for (int v : kv.second) sum = mix(sum, static_cast<uint64_t>(v));
    }
    sum = mix(sum, map.size());
    return sum;
}

}  // namespace

int main() {
    std::vector<uint64_t> sums(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; i++) threads.emplace_back([i, &sums] { sums[i] = worker(i); });
    for (auto& t : threads) t.join();

    // A burst of short-lived threads that allocate and exit, so per-thread
    // allocator state is created and torn down repeatedly.
    std::atomic<uint64_t> burst{0};
    for (int wave = 0; wave < 4; wave++) {
        std::vector<std::thread> ts;
        for (int i = 0; i < 16; i++)
            ts.emplace_back([i, wave, &burst] {
                std::unordered_map<int, std::string> m;
                for (int j = 0; j < 2000; j++) m[j] = std::string(static_cast<size_t>(j % 64), static_cast<char>('a' + i));
                uint64_t local = 0;
                for (int j = 0; j < 2000; j++) local += m[j].size();
                burst.fetch_add(local + static_cast<uint64_t>(wave));
            });
        for (auto& t : ts) t.join();
    }

    uint64_t total = 0;
    for (int i = 0; i < kThreads; i++) {
        std::printf("thread %d checksum %016llx\n", i, static_cast<unsigned long long>(sums[i]));
        total = mix(total, sums[i]);
    }
    std::printf("burst %llu\n", static_cast<unsigned long long>(burst.load()));
    std::printf("total %016llx\n", static_cast<unsigned long long>(total));
    std::printf("errors %d\n", g_errors.load());
    return g_errors.load() == 0 ? 0 : 1;
}
