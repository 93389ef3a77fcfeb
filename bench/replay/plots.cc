// CSV time series and gnuplot PNGs (see report.h).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "bench/replay/report.h"

namespace nvlsched::replay {
namespace {

// Columns of the series CSV, 1-based as gnuplot counts them.
constexpr int kQueueColumn = 7;
struct PlotSpec {
  const char* file;
  const char* title;
  int column;
};
constexpr PlotSpec kPlots[] = {
    {"used_gpus.png", "GPUs in use", 3},
    {"free_machines.png", "wholly free machines", 4},
    {"fully_free_domains.png", "fully free NVLink domains", 5},
    {"stranded_machines.png", "stranded machines (free, alone in their domain)", 6},
    {"queue_length.png", "jobs waiting", kQueueColumn},
};

const std::string& Label(const ReplayResult& r) { return r.label.empty() ? r.policy : r.label; }
std::string SeriesFileName(const ReplayResult& r) { return absl::StrCat("series_", Label(r), ".csv"); }

std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

absl::Status WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrCat("cannot write ", path.string(),
                                            "; check that --out_dir is writable"));
  }
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create --out_dir ", dir, ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteSeriesCsv(const std::string& dir, const ReplayResult& result) {
  if (absl::Status s = MakeDir(dir); !s.ok()) return s;
  std::string csv =
      "time_s,time_h,used_gpus,free_machines,fully_free_domains,stranded_machines,queue_length,"
      "preempted_jobs,spot_gpu_hours_lost\n";
  for (const SeriesPoint& p : result.series) {
    absl::StrAppend(&csv, p.time_s, ",", absl::StrFormat("%.2f", p.time_s / 3600.0), ",",
                    p.used_gpus, ",", p.free_machines, ",", p.fully_free_domains, ",",
                    p.stranded_machines, ",", p.queue_length, ",", p.preemptions, ",",
                    absl::StrFormat("%.2f", p.spot_gpu_seconds_lost / 3600.0), "\n");
  }
  return WriteFile(std::filesystem::path(dir) / SeriesFileName(result), csv);
}

absl::Status WritePlots(const std::string& dir, absl::Span<const ReplayResult> results) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    return absl::UnavailableError(absl::StrCat(
        "gnuplot is not installed (apt-get install gnuplot-nox): no PNGs; the CSV series are in ",
        dir));
  }
  if (results.empty()) return absl::OkStatus();
  const ReplayOptions& o = results.front().options;
  std::string modes;  // the modes that ran, in first-seen order
  for (const ReplayResult& r : results) {
    const std::string_view name = RefusalModeName(r.mode);
    if (!absl::StrContains(absl::StrCat(",", modes, ","), absl::StrCat(",", AbslView(name), ","))) {
      absl::StrAppend(&modes, modes.empty() ? "" : ",", AbslView(name));
    }
  }
  // Paths in the script are relative: gnuplot runs inside `dir`, so no quoting trouble.
  std::string script = absl::StrFormat(
      "set terminal pngcairo size 1400,500 noenhanced\n"
      "set datafile separator ','\n"
      "set key outside right top\n"
      "set grid\n"
      "set xlabel 'simulated time (days)'\n"
      "subtitle = '%d domains x %d machines x %d GPUs, on_refusal=%s'\n",
      o.fleet.domains, o.fleet.machines_per_domain, o.fleet.gpus_per_machine, modes);
  for (const PlotSpec& plot : kPlots) {
    // Nothing ever waits in drop mode: an all-zero plot says nothing.
    if (plot.column == kQueueColumn &&
        std::all_of(results.begin(), results.end(),
                    [](const ReplayResult& r) { return r.mode == RefusalMode::kDrop; })) {
      continue;
    }
    absl::StrAppend(&script, "set output '", plot.file, "'\n", "set title '", plot.title,
                    " (hourly samples); ' . subtitle\nplot ");
    for (size_t p = 0; p < results.size(); ++p) {
      absl::StrAppend(&script, p == 0 ? "" : ", \\\n     ", "'", SeriesFileName(results[p]),
                      "' skip 1 using ($1/86400):", plot.column, " with lines lw 1.5 title '",
                      Label(results[p]), "'");
    }
    absl::StrAppend(&script, "\n");
  }
  const std::filesystem::path script_path = std::filesystem::path(dir) / "plots.gp";
  if (absl::Status s = WriteFile(script_path, script); !s.ok()) return s;
  const std::string command =
      absl::StrCat("cd ", ShellQuote(dir), " && gnuplot plots.gp > gnuplot.log 2>&1");
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed on ", script_path.string(),
                                            "; its output is in ", dir, "/gnuplot.log"));
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::replay
