#include "qkv/files/image_seal.hpp"

#include "qkv/files/h5_probe.hpp"

// OpenSSL's SHA-256 as a plain function (the 1.1 interface): its EVP interface sets up providers
// on first use, about 0.8 ms a process, more than hashing a small stage's image (SHA-NI: ~2 GB/s).
#define OPENSSL_API_COMPAT 10101
#include <array>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qkv {

namespace {

constexpr size_t kKeySize = 32, kMacSize = 32;
constexpr char kMagic[8] = {'q', 'k', 'v', 's', 'e', 'a', 'l', '1'};
using Key = std::array<unsigned char, kKeySize>;

std::string key_path() {
    const std::string dir = qkv_cache_dir();
    return dir.empty() ? dir : dir + "/pipe-key";
}

// The key of a regular file of ours that nobody else may read; false where there is none.
bool read_key(const std::string& path, Key& key) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
              (st.st_mode & 077) == 0 && st.st_size == static_cast<off_t>(kKeySize) &&
              ::read(fd, key.data(), kKeySize) == static_cast<ssize_t>(kKeySize);
    ::close(fd);
    return ok;
}

// This user's key, made on first use: written to a temporary file and linked into place, so that
// stages starting together agree on one key.
bool user_key(Key& key) {
    static int state = 0; // 0 unknown, 1 have it, -1 none
    static Key cached;
    if (state == 0) {
        state = -1;
        const std::string path = key_path();
        if (!path.empty()) {
            if (read_key(path, cached)) {
                state = 1;
            } else if (access(path.c_str(), F_OK) != 0) {
                const std::string dir = path.substr(0, path.rfind('/'));
                mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0700);
                mkdir(dir.c_str(), 0700);
                Key fresh;
                const std::string temp = path + ".tmp-" + std::to_string(getpid());
                const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd >= 0) {
                    const bool written =
                        getrandom(fresh.data(), kKeySize, 0) == static_cast<ssize_t>(kKeySize) &&
                        ::write(fd, fresh.data(), kKeySize) == static_cast<ssize_t>(kKeySize);
                    ::close(fd);
                    if (written && link(temp.c_str(), path.c_str()) != 0) { // another's won
                    }
                    unlink(temp.c_str());
                    if (read_key(path, cached)) state = 1;
                }
            }
        }
    }
    if (state == 1) key = cached;
    return state == 1;
}

// HMAC-SHA256 (RFC 2104): SHA256((K ^ opad) || SHA256((K ^ ipad) || data)), K padded to the
// block of 64 bytes.
void mac(const Key& key, const char* data, size_t n, unsigned char* out) {
    unsigned char pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    for (unsigned char x : {0x36, 0x5c}) {
        std::memset(pad, x, sizeof pad);
        for (size_t i = 0; i < kKeySize; ++i)
            pad[i] ^= key[i];
        SHA256_Init(&c);
        SHA256_Update(&c, pad, sizeof pad);
        if (x == 0x36) {
            SHA256_Update(&c, data, n);
            SHA256_Final(inner, &c);
        } else {
            SHA256_Update(&c, inner, sizeof inner);
            SHA256_Final(out, &c);
        }
    }
}

} // namespace

void seal_image(std::vector<char>& image) {
    Key key;
    if (!user_key(key)) return;
    unsigned char m[kMacSize];
    mac(key, image.data(), image.size(), m);
    image.insert(image.end(), reinterpret_cast<char*>(m), reinterpret_cast<char*>(m) + kMacSize);
    image.insert(image.end(), kMagic, kMagic + sizeof kMagic);
}

bool unseal_image(std::vector<char>& image) {
    const size_t seal = kMacSize + sizeof kMagic;
    if (image.size() < seal ||
        std::memcmp(image.data() + image.size() - sizeof kMagic, kMagic, sizeof kMagic) != 0)
        return false;
    const size_t n = image.size() - seal;
    unsigned char given[kMacSize], want[kMacSize];
    std::memcpy(given, image.data() + n, kMacSize);
    image.resize(n);
    Key key;
    if (!user_key(key)) return false;
    mac(key, image.data(), n, want);
    return CRYPTO_memcmp(given, want, kMacSize) == 0;
}

} // namespace qkv
