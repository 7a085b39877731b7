/*  example_tasks.c - a task library: build it as a shared object and any
    mp-worker can serve its tasks:

        mp-worker --broker tcp://127.0.0.1:5555 --tasks ./libexample_tasks.so

    Each MP_TASK registers itself when the library is loaded. Link it
    against libmp (shared), as mp-worker is, so both share one registry.
*/
#include <math.h>
#include <mp.h>
#include <string.h>

/* square(x) -> x*x */
MP_TASK(square)
{
    int64_t x = mp_task_int(task, 0);
    return mp_task_return_int(task, x * x);
}

/* add(a, b) -> a+b (starmap) */
MP_TASK(add)
{
    return mp_task_return_int(task, mp_task_int(task, 0) + mp_task_int(task, 1));
}

static int is_prime(int64_t n)
{
    if (n < 2)
        return 0;
    if (n % 2 == 0)
        return n == 2;
    for (int64_t d = 3; d * d <= n; d += 2)
        if (n % d == 0)
            return 0;
    return 1;
}

/* count_primes(lo, hi) -> primes in [lo, hi): a CPU-bound task */
MP_TASK(count_primes)
{
    int64_t lo = mp_task_int(task, 0), hi = mp_task_int(task, 1), n = 0;
    if (hi - lo > 100000000)
        return mp_task_fail(task, 22, "range too large: %lld numbers", (long long)(hi - lo));
    for (int64_t i = lo; i < hi; i++)
        n += is_prime(i);
    return mp_task_return_int(task, n);
}

/* upper(s) -> s in upper case */
MP_TASK(upper)
{
    size_t n;
    const char *s = mp_task_str(task, 0, &n);
    if (!s)
        return 0; /* not a string: the item fails with MP_EBADARGS */
    char buf[256];
    if (n >= sizeof buf)
        return mp_task_fail(task, 7, "string too long (%zu bytes, 255 at most)", n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    return mp_task_return_strn(task, buf, n);
}

/* norm(array of floats) -> Euclidean length */
MP_TASK(norm)
{
    const double *v;
    size_t n = mp_task_floats(task, 0, &v);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i] * v[i];
    return mp_task_return_float(task, sqrt(sum));
}
