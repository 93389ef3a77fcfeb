#include "tests/store/fault_injection_vfs.h"

#include <sqlite3.h>

#include <cstddef>
#include <utility>

#include "absl/strings/str_cat.h"

namespace nvlsched::store::store_testing {

// The registered VFS. pAppData points back here; `real` is the wrapped "unix" VFS.
struct FaultInjectionVfs::Shim {
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;
  FaultInjectionVfs* owner = nullptr;
};

namespace {

// One open file: SQLite allocates vfs.szOsFile bytes and hands them to xOpen; the shim's part
// comes first (sqlite3_file must be the first member), the wrapped VFS's file follows.
struct ShimFile {
  sqlite3_file base;  // base.pMethods == &methods once the real file is open
  // A copy of the real file's methods with the counted ones (and every forwarded one) replaced;
  // kept per file so its version and optional methods (xShmMap, xFetch) mirror the real file's.
  sqlite3_io_methods methods;
  FaultInjectionVfs* owner;
  // SQLite keeps the name passed to xOpen valid until xClose; null for temporary files.
  const char* name;
  sqlite3_file* real;
};

constexpr size_t kRealFileOffset = (sizeof(ShimFile) + 7) & ~size_t{7};

ShimFile* AsShim(sqlite3_file* file) { return reinterpret_cast<ShimFile*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return AsShim(file)->real; }
FaultInjectionVfs::Shim* ShimOf(sqlite3_vfs* vfs) {
  return static_cast<FaultInjectionVfs::Shim*>(vfs->pAppData);
}
sqlite3_vfs* RealVfs(sqlite3_vfs* vfs) { return ShimOf(vfs)->real; }

int IoErrorCode(FaultKind kind) {
  switch (kind) {
    case FaultKind::kWrite: return SQLITE_IOERR_WRITE;
    case FaultKind::kSync: return SQLITE_IOERR_FSYNC;
    case FaultKind::kTruncate: return SQLITE_IOERR_TRUNCATE;
    case FaultKind::kLock: return SQLITE_IOERR_LOCK;
  }
  return SQLITE_IOERR;
}

const char* CodeName(int code) {
  switch (code) {
    case SQLITE_IOERR_WRITE: return "SQLITE_IOERR_WRITE";
    case SQLITE_IOERR_FSYNC: return "SQLITE_IOERR_FSYNC";
    case SQLITE_IOERR_TRUNCATE: return "SQLITE_IOERR_TRUNCATE";
    case SQLITE_IOERR_LOCK: return "SQLITE_IOERR_LOCK";
    case SQLITE_FULL: return "SQLITE_FULL";
  }
  return "SQLITE_IOERR";
}

// ---- sqlite3_io_methods: the four counted calls ----

int ShimWrite(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  ShimFile* f = AsShim(file);
  const int rc = f->owner->CountCall(FaultKind::kWrite, f->name, offset, amount);
  if (rc != SQLITE_OK) return rc;
  return f->real->pMethods->xWrite(f->real, data, amount, offset);
}

int ShimSync(sqlite3_file* file, int flags) {
  ShimFile* f = AsShim(file);
  const int rc = f->owner->CountCall(FaultKind::kSync, f->name, flags, 0);
  if (rc != SQLITE_OK) return rc;
  return f->real->pMethods->xSync(f->real, flags);
}

int ShimTruncate(sqlite3_file* file, sqlite3_int64 size) {
  ShimFile* f = AsShim(file);
  const int rc = f->owner->CountCall(FaultKind::kTruncate, f->name, size, 0);
  if (rc != SQLITE_OK) return rc;
  return f->real->pMethods->xTruncate(f->real, size);
}

int ShimLock(sqlite3_file* file, int level) {
  ShimFile* f = AsShim(file);
  const int rc = f->owner->CountCall(FaultKind::kLock, f->name, level, 0);
  if (rc != SQLITE_OK) return rc;
  return f->real->pMethods->xLock(f->real, level);
}

// ---- sqlite3_io_methods: forwarded unchanged ----

int ShimClose(sqlite3_file* file) {
  sqlite3_file* real = Real(file);
  // SQLite frees `file` (and with it `real`) after this returns.
  return real->pMethods->xClose(real);
}
int ShimRead(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  return Real(file)->pMethods->xRead(Real(file), data, amount, offset);
}
int ShimFileSize(sqlite3_file* file, sqlite3_int64* size) {
  return Real(file)->pMethods->xFileSize(Real(file), size);
}
int ShimUnlock(sqlite3_file* file, int level) {
  return Real(file)->pMethods->xUnlock(Real(file), level);
}
int ShimCheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}
int ShimFileControl(sqlite3_file* file, int op, void* arg) {
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}
int ShimSectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }
int ShimDeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}
int ShimShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}
int ShimShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
}
void ShimShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }
int ShimShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
}
int ShimFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}
int ShimUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
}

// The real file's methods, each present one replaced by the shim's (absent ones stay null, so
// SQLite sees exactly the capabilities of the real file, e.g. no shared memory for temp files).
sqlite3_io_methods ShimMethodsFor(const sqlite3_io_methods& real) {
  sqlite3_io_methods m = real;
  m.xClose = ShimClose;
  m.xRead = ShimRead;
  m.xWrite = ShimWrite;
  m.xTruncate = ShimTruncate;
  m.xSync = ShimSync;
  m.xFileSize = ShimFileSize;
  m.xLock = ShimLock;
  m.xUnlock = ShimUnlock;
  m.xCheckReservedLock = ShimCheckReservedLock;
  m.xFileControl = ShimFileControl;
  m.xSectorSize = ShimSectorSize;
  m.xDeviceCharacteristics = ShimDeviceCharacteristics;
  if (real.iVersion >= 2) {
    if (real.xShmMap != nullptr) m.xShmMap = ShimShmMap;
    if (real.xShmLock != nullptr) m.xShmLock = ShimShmLock;
    if (real.xShmBarrier != nullptr) m.xShmBarrier = ShimShmBarrier;
    if (real.xShmUnmap != nullptr) m.xShmUnmap = ShimShmUnmap;
  }
  if (real.iVersion >= 3) {
    if (real.xFetch != nullptr) m.xFetch = ShimFetch;
    if (real.xUnfetch != nullptr) m.xUnfetch = ShimUnfetch;
  }
  return m;
}

// ---- sqlite3_vfs ----

int ShimOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  ShimFile* f = AsShim(file);
  f->base.pMethods = nullptr;
  f->owner = ShimOf(vfs)->owner;
  f->name = name;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealFileOffset);
  f->real->pMethods = nullptr;
  sqlite3_vfs* real_vfs = RealVfs(vfs);
  const int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even if xOpen failed: mirror the real file.
  if (f->real->pMethods != nullptr) {
    f->methods = ShimMethodsFor(*f->real->pMethods);
    f->base.pMethods = &f->methods;
  }
  return rc;
}

int ShimDelete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return RealVfs(vfs)->xDelete(RealVfs(vfs), name, sync_dir);
}
int ShimAccess(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return RealVfs(vfs)->xAccess(RealVfs(vfs), name, flags, out);
}
int ShimFullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return RealVfs(vfs)->xFullPathname(RealVfs(vfs), name, size, out);
}
void* ShimDlOpen(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xDlOpen(RealVfs(vfs), name);
}
void ShimDlError(sqlite3_vfs* vfs, int size, char* out) {
  RealVfs(vfs)->xDlError(RealVfs(vfs), size, out);
}
void (*ShimDlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return RealVfs(vfs)->xDlSym(RealVfs(vfs), handle, symbol);
}
void ShimDlClose(sqlite3_vfs* vfs, void* handle) { RealVfs(vfs)->xDlClose(RealVfs(vfs), handle); }
int ShimRandomness(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xRandomness(RealVfs(vfs), size, out);
}
int ShimSleep(sqlite3_vfs* vfs, int micros) { return RealVfs(vfs)->xSleep(RealVfs(vfs), micros); }
int ShimCurrentTime(sqlite3_vfs* vfs, double* out) {
  return RealVfs(vfs)->xCurrentTime(RealVfs(vfs), out);
}
int ShimGetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xGetLastError(RealVfs(vfs), size, out);
}
int ShimCurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return RealVfs(vfs)->xCurrentTimeInt64(RealVfs(vfs), out);
}
int ShimSetSystemCall(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr call) {
  return RealVfs(vfs)->xSetSystemCall(RealVfs(vfs), name, call);
}
sqlite3_syscall_ptr ShimGetSystemCall(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xGetSystemCall(RealVfs(vfs), name);
}
const char* ShimNextSystemCall(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xNextSystemCall(RealVfs(vfs), name);
}

}  // namespace

absl::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kWrite: return "write";
    case FaultKind::kSync: return "sync";
    case FaultKind::kTruncate: return "truncate";
    case FaultKind::kLock: return "lock";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<FaultInjectionVfs>> FaultInjectionVfs::Register(
    const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("the fault-injection VFS needs a name");
  if (sqlite3_vfs_find(name.c_str()) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("a SQLite VFS named \"", name,
                                                 "\" is already registered; pick another name"));
  }
  sqlite3_vfs* real = sqlite3_vfs_find("unix");
  if (real == nullptr) {
    return absl::NotFoundError("this SQLite has no \"unix\" VFS to wrap");
  }
  auto shim = std::make_unique<Shim>();
  shim->real = real;
  sqlite3_vfs& v = shim->vfs;
  // Version 3 of the VFS interface, or the real one's if older: the optional methods beyond it
  // are left null, exactly as on the real VFS.
  v.iVersion = real->iVersion < 3 ? real->iVersion : 3;
  v.szOsFile = static_cast<int>(kRealFileOffset) + real->szOsFile;
  v.mxPathname = real->mxPathname;
  v.pNext = nullptr;
  v.pAppData = shim.get();
  v.xOpen = ShimOpen;
  v.xDelete = ShimDelete;
  v.xAccess = ShimAccess;
  v.xFullPathname = ShimFullPathname;
  v.xDlOpen = ShimDlOpen;
  v.xDlError = ShimDlError;
  v.xDlSym = ShimDlSym;
  v.xDlClose = ShimDlClose;
  v.xRandomness = ShimRandomness;
  v.xSleep = ShimSleep;
  v.xCurrentTime = ShimCurrentTime;
  v.xGetLastError = ShimGetLastError;
  if (v.iVersion >= 2) v.xCurrentTimeInt64 = ShimCurrentTimeInt64;
  if (v.iVersion >= 3) {
    v.xSetSystemCall = ShimSetSystemCall;
    v.xGetSystemCall = ShimGetSystemCall;
    v.xNextSystemCall = ShimNextSystemCall;
  }
  Shim* raw_shim = shim.get();
  std::unique_ptr<FaultInjectionVfs> vfs(new FaultInjectionVfs(name, std::move(shim)));
  raw_shim->owner = vfs.get();
  // The name must outlive the registration: it points into the FaultInjectionVfs.
  raw_shim->vfs.zName = vfs->name_.c_str();
  const int rc = sqlite3_vfs_register(&raw_shim->vfs, /*makeDflt=*/0);
  if (rc != SQLITE_OK) {
    raw_shim->vfs.zName = nullptr;  // tells the destructor it was never registered
    return absl::InternalError(
        absl::StrCat("sqlite3_vfs_register(\"", name, "\") failed: ", sqlite3_errstr(rc)));
  }
  return vfs;
}

FaultInjectionVfs::FaultInjectionVfs(std::string name, std::unique_ptr<Shim> shim)
    : name_(std::move(name)), shim_(std::move(shim)) {}

FaultInjectionVfs::~FaultInjectionVfs() {
  if (shim_->vfs.zName != nullptr) sqlite3_vfs_unregister(&shim_->vfs);
}

void FaultInjectionVfs::Reset() {
  MutexLock lock(&mu_);
  counts_.fill(0);
  armed_ = false;
  fired_ = false;
  fired_call_.clear();
}

int64_t FaultInjectionVfs::count(FaultKind kind) const {
  MutexLock lock(&mu_);
  return counts_[static_cast<int>(kind)];
}

void FaultInjectionVfs::FailNthCall(FaultKind kind, int64_t n, FaultError error) {
  MutexLock lock(&mu_);
  armed_ = n > 0;
  armed_kind_ = kind;
  armed_n_ = n;
  armed_error_ = error;
  fired_ = false;
  fired_call_.clear();
}

bool FaultInjectionVfs::fired() const {
  MutexLock lock(&mu_);
  return fired_;
}

std::string FaultInjectionVfs::fired_call() const {
  MutexLock lock(&mu_);
  return fired_call_;
}

int FaultInjectionVfs::CountCall(FaultKind kind, const char* file_name, int64_t offset,
                                 int64_t amount) {
  MutexLock lock(&mu_);
  const int64_t n = ++counts_[static_cast<int>(kind)];
  if (!armed_ || kind != armed_kind_ || n != armed_n_) return SQLITE_OK;
  const int code = armed_error_ == FaultError::kDiskFull ? SQLITE_FULL : IoErrorCode(kind);
  fired_ = true;
  std::string what;
  switch (kind) {
    case FaultKind::kWrite: what = absl::StrCat("offset ", offset, ", ", amount, " bytes"); break;
    case FaultKind::kSync: what = absl::StrCat("flags 0x", absl::Hex(offset)); break;
    case FaultKind::kTruncate: what = absl::StrCat("to ", offset, " bytes"); break;
    case FaultKind::kLock: what = absl::StrCat("to level ", offset); break;
  }
  fired_call_ = absl::StrCat(FaultKindName(kind), " #", n, " of ",
                             file_name != nullptr ? file_name : "(temporary file)", " (", what,
                             "): ", CodeName(code));
  return code;
}

}  // namespace nvlsched::store::store_testing
