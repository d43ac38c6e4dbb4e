// thread_pool: a few threads that split a loop into contiguous parts, or share out items one at
// a time. Each item is computed by one thread, so results never depend on the thread count.
// Between jobs a thread spins briefly before it sleeps: the forward pass hands out jobs every
// few tens of microseconds, and a wake-up from sleep costs about as much.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qkv {

class ThreadPool {
  public:
    explicit ThreadPool(int n) : n_(std::max(n, 1)) {
        for (int i = 1; i < n_; ++i)
            workers_.emplace_back([this, i] { loop(i); });
    }
    ~ThreadPool() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_)
            t.join();
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // fn(begin, end) over [0, n) in n_ contiguous parts; small jobs run on the caller alone.
    void run(int64_t n, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& fn) {
        const int parts =
            static_cast<int>(std::min<int64_t>(n_, std::max<int64_t>(1, n / min_per_thread)));
        if (parts <= 1) {
            fn(0, n);
            return;
        }
        {
            std::lock_guard<std::mutex> lock(m_);
            job_ = &fn;
            n_items_ = n;
            parts_ = parts;
            pending_.store(parts - 1, std::memory_order_relaxed);
            generation_.fetch_add(1, std::memory_order_release);
        }
        cv_.notify_all();
        fn(0, n / parts);
        for (int i = 0; i < kSpin && pending_.load(std::memory_order_acquire) != 0; ++i)
            pause();
        if (pending_.load(std::memory_order_acquire) != 0) {
            std::unique_lock<std::mutex> lock(m_);
            done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
        }
    }

    // fn(i) for each i in [0, n), each item taken whole by the next free thread: for items of
    // uneven cost; which thread computes an item never changes what it computes.
    void each(int64_t n, const std::function<void(int64_t)>& fn) {
        if (n_ == 1 || n <= 1) {
            for (int64_t i = 0; i < n; ++i)
                fn(i);
            return;
        }
        std::atomic<int64_t> next{0};
        run(std::min<int64_t>(n_, n), 1, [&](int64_t, int64_t) {
            for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;)
                fn(i);
        });
    }

  private:
    static constexpr int kSpin = 4000; // about 20-100 microseconds of pause instructions
    static void pause() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    void loop(int index) {
        uint64_t seen = 0;
        while (true) {
            for (int i = 0; i < kSpin && generation_.load(std::memory_order_acquire) == seen; ++i)
                pause();
            const std::function<void(int64_t, int64_t)>* job;
            int64_t n;
            int parts;
            {
                std::unique_lock<std::mutex> lock(m_);
                cv_.wait(lock, [&] {
                    return stop_ || generation_.load(std::memory_order_acquire) != seen;
                });
                if (stop_) return;
                seen = generation_.load(std::memory_order_acquire);
                job = job_;
                n = n_items_;
                parts = parts_;
            }
            if (index < parts) {
                (*job)(n * index / parts, n * (index + 1) / parts);
                if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                    std::lock_guard<std::mutex> lock(m_);
                    done_.notify_one();
                }
            }
        }
    }

    const int n_;
    std::vector<std::thread> workers_;
    std::mutex m_;
    std::condition_variable cv_, done_;
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t n_items_ = 0;
    int parts_ = 0;
    std::atomic<int> pending_{0};
    std::atomic<uint64_t> generation_{0};
    bool stop_ = false;
};

} // namespace qkv
