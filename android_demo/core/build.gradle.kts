// Plain Kotlin/JVM: all of the app's pixel and model-contract logic, testable without a device.
// The same sources and tests also build without Gradle: see core/test.sh.
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
    compilerOptions {
        allWarningsAsErrors.set(true)
    }
}

dependencies {
    testImplementation(libs.junit)
}
