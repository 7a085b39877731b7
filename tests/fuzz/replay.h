/*  replay.h - without libFuzzer (MP_FUZZ_REPLAY), main() replays every file
    of the corpus directories given on the command line through
    LLVMFuzzerTestOneInput, plus a few thousand cheap mutations of each.
    Included once by each fuzz target. */
#ifdef MP_FUZZ_REPLAY
static int replay_file(const char *path, unsigned *seed)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 1;
    uint8_t buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    for (int i = 0; i < 2000 && n > 0; i++) { /* cheap mutations */
        uint8_t m[65536];
        memcpy(m, buf, n);
        for (int k = 0; k < 1 + rand_r(seed) % 4; k++)
            m[rand_r(seed) % n] = (uint8_t)rand_r(seed);
        LLVMFuzzerTestOneInput(m, 1 + (size_t)rand_r(seed) % n);
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned seed = 12345;
    int files = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d)
            return 2;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
            if (replay_file(path, &seed))
                return 3;
            files++;
        }
        closedir(d);
    }
    printf("replayed %d corpus files\n", files);
    return files > 0 ? 0 : 4;
}
#endif
